/**
 * Processes for the MQTT and agent benchmarks: spawned pinned to cores (`taskset`) with enough file
 * descriptors for thousands of connections (`prlimit`), measured from Linux's /proc (RSS, CPU
 * time), and always ended by their own pid.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { pinned } from '../lib/cores.js';

/** Linux's USER_HZ: /proc CPU times are in these ticks. */
const TICKS_PER_SECOND = 100;

/** The hard limit on open files this process may raise a child's limit to without privileges. */
function hardFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  return hard === 'unlimited' ? 1 << 20 : Number(hard ?? 1024);
}

/**
 * `command args` pinned to `cores`, with at least `files` open files allowed: root may raise the
 * hard limit; anyone else gets the hard limit they have (and a clear error later if it is short).
 * taskset and prlimit exec the command, so the child's pid is the command's own.
 */
export function spawnPinned(cores: string, command: string, args: readonly string[], files: number, options: SpawnOptions): ChildProcess {
  const limit = process.getuid?.() === 0 ? Math.max(files, hardFileLimit()) : Math.min(files, hardFileLimit());
  const p = pinned(cores, 'prlimit', [`--nofile=${limit}:${limit}`, command, ...args]);
  return spawn(p.command, p.args, options);
}

export interface ProcessUsage {
  /** User + system CPU seconds since the process started. */
  cpuS: number;
  rssBytes: number;
}

/**
 * CPU time in nanoseconds from each thread's schedstat, summed: an idle process uses less than one
 * 10 ms tick in a minute, which /proc/PID/stat would round to 0. Null when the kernel has no schedstat.
 */
async function threadsCpuS(pid: number): Promise<number | null> {
  try {
    let ns = 0;
    for (const tid of await readdir(`/proc/${pid}/task`)) {
      const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => null);
      if (text !== null) ns += Number(text.split(' ')[0]);
    }
    return ns / 1e9;
  } catch {
    return null;
  }
}

/**
 * CPU time and RSS of a process. CPU comes from the threads' schedstat (ns) when the kernel has it,
 * else from /proc/PID/stat (10 ms ticks, threads that exited included).
 */
export async function processUsage(pid: number): Promise<ProcessUsage> {
  // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  const precise = await threadsCpuS(pid);
  return { cpuS: precise ?? (Number(stat[11]) + Number(stat[12])) / TICKS_PER_SECOND, rssBytes: rssKb * 1024 };
}

export interface UsageSummary {
  samples: number;
  seconds: number;
  rssMeanBytes: number;
  rssMaxBytes: number;
  /** % of one core, over each interval. */
  cpuMeanPercent: number;
  cpuMaxPercent: number;
}

/** Samples RSS and CPU of each pid every `intervalMs` for `durationMs`, all at the same instants. */
export async function sampleUsage(pids: readonly number[], durationMs: number, intervalMs: number): Promise<UsageSummary[]> {
  const series = pids.map(() => ({ rss: [] as number[], cpu: [] as number[] }));
  let last = await Promise.all(pids.map(processUsage));
  let lastAt = performance.now();
  const first = { usage: last, at: lastAt };
  const end = lastAt + durationMs;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(1, end - performance.now()))));
    const now = await Promise.all(pids.map(processUsage));
    const at = performance.now();
    now.forEach((u, i) => {
      series[i]!.rss.push(u.rssBytes);
      // A thread that exited takes its time with it: never a negative interval.
      series[i]!.cpu.push(Math.max(0, ((u.cpuS - last[i]!.cpuS) / ((at - lastAt) / 1000)) * 100));
    });
    last = now;
    lastAt = at;
  }
  const seconds = (lastAt - first.at) / 1000;
  return series.map((s, i) => ({
    samples: s.rss.length,
    seconds,
    rssMeanBytes: mean(s.rss),
    rssMaxBytes: Math.max(...s.rss),
    // The CPU time over the whole span, not the mean of the intervals.
    cpuMeanPercent: seconds > 0 ? Math.max(0, ((last[i]!.cpuS - first.usage[i]!.cpuS) / seconds) * 100) : 0,
    cpuMaxPercent: Math.max(...s.cpu),
  }));
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** A port free on 127.0.0.1 right now, for a program that cannot listen on port 0 and say which it got. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** Ends a child: `signal`, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export const MiB = 1024 * 1024;
