/**
 * CPU and memory of a process read from Linux's /proc at a fixed interval: the total CPU time over a
 * window, the busiest interval (as % of one core) and the peak resident memory. /proc rather than a
 * library: it is what pidusage reads on Linux, and one read per tick is all it takes.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100;

export interface ProcessUsage {
  /** CPU seconds, user + system, every thread. */
  cpuS: number;
  rssMb: number;
}

/**
 * One reading of a process's CPU time and resident memory. Synchronous on purpose: /proc answers in
 * microseconds, and a reading that waited for a busy event loop would not match its timestamp.
 */
export function processUsage(pid: number): ProcessUsage {
  // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return { cpuS: (Number(stat[11]) + Number(stat[12])) / TICKS_PER_S, rssMb: Math.round((rssKb / 1024) * 10) / 10 };
}

export interface UsageSummary {
  /** CPU seconds used between start and stop. */
  cpuS: number;
  /** The busiest interval, in % of one core (100 = one core busy for the whole interval). */
  peakCpuPct: number;
  /** Resident memory: at start, and the highest seen. */
  startRssMb: number;
  peakRssMb: number;
  samples: number;
  intervalMs: number;
}

export interface UsageSampler {
  /** Stops sampling (one last reading) and sums up. */
  stop(): Promise<UsageSummary>;
}

/** Samples `pid` every `intervalMs` until `stop()`; a process that went away ends the sampling. */
export async function sampleUsage(pid: number, intervalMs = 250): Promise<UsageSampler> {
  const first = processUsage(pid);
  let last = { at: performance.now(), ...first };
  let peakCpuPct = 0;
  let peakRssMb = first.rssMb;
  let samples = 1;
  let gone = false;
  const read = () => {
    if (gone) return;
    try {
      const usage = processUsage(pid);
      const now = { at: performance.now(), ...usage };
      const wallS = (now.at - last.at) / 1000;
      // Ticks are 10 ms: an interval much shorter than that would show 0 % or 200 %.
      if (wallS > 0) peakCpuPct = Math.max(peakCpuPct, ((now.cpuS - last.cpuS) / wallS) * 100);
      peakRssMb = Math.max(peakRssMb, now.rssMb);
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
      return { cpuS: Math.round((last.cpuS - first.cpuS) * 100) / 100, peakCpuPct: Math.round(peakCpuPct), startRssMb: first.rssMb, peakRssMb, samples, intervalMs };
    },
  };
}
