/**
 * Container CPU and memory from the engine's stats answer (agent/runtime/container-stats.ts),
 * computed as `docker stats` does, and the telemetry list built from it
 * (agent/telemetry/container-metrics.ts) against an in-memory runtime.
 */
import test from 'ava';
import { pino } from 'pino';
import { containerStatsOf, cpuPercent, memoryUsage, type EngineStats } from '../../agent/runtime/container-stats.js';
import type { ContainerStats, ManagedContainer } from '../../agent/runtime/container-runtime.js';
import { containerMetrics } from '../../agent/telemetry/container-metrics.js';

/** Shaped like Docker 26's answer for a container on cgroup v1 (numbers from a real one, rounded). */
const sample = (): EngineStats => ({
  cpu_stats: { cpu_usage: { total_usage: 1_441_805_093, percpu_usage: [51_485_339, 1_390_319_754] }, system_cpu_usage: 60_927_440_000_000, online_cpus: 2 },
  precpu_stats: { cpu_usage: { total_usage: 441_805_093, percpu_usage: [51_485_339, 390_319_754] }, system_cpu_usage: 60_925_440_000_000, online_cpus: 2 },
  memory_stats: { usage: 60_420_096, limit: 25_276_510_208, stats: { total_inactive_file: 40_194_048, inactive_file: 40_194_048, cache: 40_194_048 } },
});

test('CPU percent is the container delta over the system delta, times the online CPUs', (t) => {
  // 1e9 ns of container CPU over 2e9 ns of system CPU (summed over 2 cores): one core busy = 100 %.
  t.is(cpuPercent(sample()), 100);
});

test('without online_cpus the per-CPU list gives the core count (older engines)', (t) => {
  const s = sample();
  delete s.cpu_stats!.online_cpus;
  t.is(cpuPercent(s), 100);
});

test('an idle container is 0; a one-shot answer (no previous sample) or a counter reset is unknown, not 0', (t) => {
  const idle = sample();
  idle.cpu_stats!.cpu_usage!.total_usage = idle.precpu_stats!.cpu_usage!.total_usage;
  t.is(cpuPercent(idle), 0);
  t.is(cpuPercent({ ...sample(), precpu_stats: { cpu_usage: { total_usage: 0 } } }), null, 'one-shot');
  const reset = sample();
  reset.cpu_stats!.cpu_usage!.total_usage = 5;
  t.is(cpuPercent(reset), null);
  t.is(cpuPercent({}), null, 'a stopped container answers with empty stats');
});

test('memory leaves out the reclaimable page cache (cgroup v1 and v2 names), like docker stats', (t) => {
  t.is(memoryUsage(sample()), 60_420_096 - 40_194_048);
  t.is(memoryUsage({ memory_stats: { usage: 1000, stats: { inactive_file: 300 } } }), 700, 'cgroup v2');
  t.is(memoryUsage({ memory_stats: { usage: 1000, stats: { inactive_file: 3000 } } }), 1000, 'a cache larger than the usage is not subtracted');
  t.is(memoryUsage({ memory_stats: {} }), null);
  t.deepEqual(containerStatsOf(sample()), { cpuPercent: 100, memoryBytes: 20_226_048, memoryLimitBytes: 25_276_510_208 });
  t.deepEqual(containerStatsOf({}), { cpuPercent: null, memoryBytes: null, memoryLimitBytes: null });
});

const container = (id: string, over: Partial<ManagedContainer> = {}): ManagedContainer => ({ id, name: `dev-${id}`, service: 'iris', revision: 1, image: 'img', port: 9000, running: true, created: 1, ...over });

test('telemetry lists each running container with its service and revision; failed stats are nulls', async (t) => {
  const stats: ContainerStats = { cpuPercent: 12.5, memoryBytes: 4096, memoryLimitBytes: 8192 };
  const runtime = {
    list: async () => [container('a'), container('b', { service: 'digits', revision: 3 }), container('c', { running: false }), container('d', { service: '', revision: Number.NaN })],
    containerStats: async (id: string) => {
      if (id === 'b') throw new Error('the engine gave no answer in 10 s');
      return stats;
    },
  };
  t.deepEqual(await containerMetrics(runtime, 'dev', pino({ level: 'silent' })), [
    { service: 'iris', revision: 1, ...stats },
    { service: 'digits', revision: 3, cpuPercent: null, memoryBytes: null, memoryLimitBytes: null },
  ]);
});

test('an engine that cannot list containers gives an empty list, not a failed batch', async (t) => {
  const runtime = {
    list: async (): Promise<ManagedContainer[]> => {
      throw new Error('connect ENOENT /var/run/docker.sock');
    },
    containerStats: async (): Promise<ContainerStats> => {
      throw new Error('unreachable');
    },
  };
  t.deepEqual(await containerMetrics(runtime, 'dev', pino({ level: 'silent' })), []);
});
