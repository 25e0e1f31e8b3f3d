/**
 * A container's CPU and memory from the engine's stats answer, computed as `docker stats` does
 * (docker/cli `cli/command/container/stats_helpers.go`), so the figures match what an operator sees
 * on the device. A figure the answer cannot give is null, never 0.
 */

export interface ContainerStats {
  /** Percent of one CPU over the engine's last sampling period (a container busy on 2 cores shows 200). */
  cpuPercent: number | null;
  /** Memory in use without the page cache the kernel can reclaim at once. */
  memoryBytes: number | null;
  /** The container's limit, or the machine's memory when it has none. */
  memoryLimitBytes: number | null;
}

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] };
  system_cpu_usage?: number;
  online_cpus?: number;
}

/** The part of `GET /containers/ID/stats?stream=false` used here. */
export interface EngineStats {
  cpu_stats?: CpuStats;
  /** The previous sample; empty in a one-shot answer. */
  precpu_stats?: CpuStats;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

const count = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;

export function cpuPercent(s: EngineStats): number | null {
  const now = s.cpu_stats;
  const before = s.precpu_stats;
  const [cpu, cpuBefore, system, systemBefore] = [now?.cpu_usage?.total_usage, before?.cpu_usage?.total_usage, now?.system_cpu_usage, before?.system_cpu_usage];
  if (!count(cpu) || !count(cpuBefore) || !count(system) || !count(systemBefore)) return null;
  const online = now?.online_cpus || now?.cpu_usage?.percpu_usage?.length || 0;
  const cpuDelta = cpu - cpuBefore;
  const systemDelta = system - systemBefore;
  // No second sample (or a counter reset): docker stats shows 0 here; we say "unknown".
  if (systemDelta <= 0 || cpuDelta < 0 || online === 0) return null;
  return (cpuDelta / systemDelta) * online * 100;
}

export function memoryUsage(s: EngineStats): number | null {
  const usage = s.memory_stats?.usage;
  if (!count(usage)) return null;
  const stats = s.memory_stats?.stats ?? {};
  // cgroup v1 names it total_inactive_file, v2 inactive_file.
  const inactive = 'total_inactive_file' in stats ? stats.total_inactive_file : stats.inactive_file;
  return count(inactive) && inactive < usage ? usage - inactive : usage;
}

export function containerStatsOf(s: EngineStats): ContainerStats {
  const limit = s.memory_stats?.limit;
  return { cpuPercent: cpuPercent(s), memoryBytes: memoryUsage(s), memoryLimitBytes: count(limit) && limit > 0 ? limit : null };
}
