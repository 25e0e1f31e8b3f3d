/**
 * CPU time and resident memory of a process, read from Linux's /proc: one reading
 * (`processUsage`), several processes sampled at the same instants for a fixed time
 * (`sampleUsage`), or one process sampled until told to stop (`startUsageSampler`).
 * /proc rather than a library: it is what pidusage reads on Linux, and one read per sample is all
 * it takes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mean, MiB } from './stats.js';

/** Linux's USER_HZ: /proc/PID/stat's CPU times are in these ticks. */
const TICKS_PER_SECOND = 100;

export interface ProcessUsage {
  /** User + system CPU seconds since the process started. */
  cpuS: number;
  rssBytes: number;
}

/**
 * CPU time in nanoseconds from each thread's schedstat, summed: an idle process uses less than one
 * 10 ms tick in a minute, which /proc/PID/stat would round to 0. Null when the kernel has no schedstat.
 */
function threadsCpuS(pid: number): number | null {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread has just exited.
      }
    }
    return ns / 1e9;
  } catch {
    return null;
  }
}

/**
 * One reading of a process's CPU time and RSS. CPU comes from the threads' schedstat (ns) when the
 * kernel has it, else from /proc/PID/stat (10 ms ticks, threads that exited included).
 * Synchronous on purpose: /proc answers in microseconds, and a reading that waited for a busy event
 * loop would not match its timestamp. Throws once the process is gone.
 */
export function processUsage(pid: number): ProcessUsage {
  // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  const precise = threadsCpuS(pid);
  return { cpuS: precise ?? (Number(stat[11]) + Number(stat[12])) / TICKS_PER_SECOND, rssBytes: rssKb * 1024 };
}

/** MiB to one decimal, as the rollout figures print memory. */
export const rssMb = (bytes: number): number => Math.round((bytes / MiB) * 10) / 10;

/** % of one core between two readings `seconds` apart; never negative (a thread that exited takes its time with it). */
const cpuPercent = (before: ProcessUsage, after: ProcessUsage, seconds: number): number => (seconds > 0 ? Math.max(0, ((after.cpuS - before.cpuS) / seconds) * 100) : 0);

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
  let last = pids.map(processUsage);
  let lastAt = performance.now();
  const first = { usage: last, at: lastAt };
  const end = lastAt + durationMs;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(1, end - performance.now()))));
    const now = pids.map(processUsage);
    const at = performance.now();
    now.forEach((u, i) => {
      series[i]!.rss.push(u.rssBytes);
      series[i]!.cpu.push(cpuPercent(last[i]!, u, (at - lastAt) / 1000));
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
    cpuMeanPercent: cpuPercent(first.usage[i]!, last[i]!, seconds),
    cpuMaxPercent: Math.max(...s.cpu),
  }));
}

export interface SamplerSummary {
  /** CPU seconds used between start and stop. */
  cpuS: number;
  /** The busiest interval, in % of one core (100 = one core busy for the whole interval). */
  peakCpuPct: number;
  /** Resident memory: at start, and the highest seen (MiB to one decimal). */
  startRssMb: number;
  peakRssMb: number;
  samples: number;
  intervalMs: number;
}

export interface UsageSampler {
  /** Stops sampling (one last reading) and sums up. */
  stop(): Promise<SamplerSummary>;
}

/** Samples `pid` every `intervalMs` until `stop()`; a process that went away ends the sampling. */
export function startUsageSampler(pid: number, intervalMs = 250): UsageSampler {
  const first = { at: performance.now(), ...processUsage(pid) };
  let last = first;
  let peakCpuPct = 0;
  let peakRssBytes = first.rssBytes;
  let samples = 1;
  let gone = false;
  const read = () => {
    if (gone) return;
    try {
      const now = { at: performance.now(), ...processUsage(pid) };
      peakCpuPct = Math.max(peakCpuPct, cpuPercent(last, now, (now.at - last.at) / 1000));
      peakRssBytes = Math.max(peakRssBytes, now.rssBytes);
      samples += 1;
      last = now;
    } catch {
      gone = true;
    }
  };
  const timer = setInterval(read, intervalMs);
  return {
    stop: async () => {
      clearInterval(timer);
      read();
      return {
        cpuS: Math.round((last.cpuS - first.cpuS) * 100) / 100,
        peakCpuPct: Math.round(peakCpuPct),
        startRssMb: rssMb(first.rssBytes),
        peakRssMb: rssMb(peakRssBytes),
        samples,
        intervalMs,
      };
    },
  };
}
