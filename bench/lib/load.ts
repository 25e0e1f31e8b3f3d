/**
 * Load generators for the HTTP benchmarks, each run in its own process pinned to the load cores
 * (`runLoad`), printing one JSON summary on stdout:
 *
 * - `closed`: autocannon (its API) with N connections for a duration, each sending its next request
 *   when the last one is answered: the most a target serves at that concurrency. Latencies are taken
 *   from autocannon's per-response times (fractions of a millisecond; its own histogram rounds to
 *   whole milliseconds, too coarse for a proxy hop).
 * - `open`: a fixed rate, evenly spaced, whatever the answers (autocannon's `overallRate` sends each
 *   connection's share in a burst at the start of every second instead), over a pool of keep-alive
 *   connections; latency from the moment a request is sent (undici queues none: there are more
 *   connections than requests in flight), and how late the generator sent (`maxLagMs`), apart: on a
 *   shared machine a stalled generator would otherwise be counted as the target's latency.
 *
 * Both sort answers by status: 2xx, 429, other statuses, and errors (no answer). One process runs
 * a list of phases in turn (a warm-up, then what is measured), and reads the CPU time of the given
 * processes (the system under test) around each phase from /proc.
 *
 *   echo '{"url":…,"phases":[{"mode":"open","rate":150,"seconds":10,…}]}' | node --import tsx bench/lib/load.ts
 *
 * (The spec comes on stdin, not in argv, so the service key it carries is not in the process list.)
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { processUsage } from './process-usage.js';
import { spawnPinned } from './processes.js';
import { quantile } from './stats.js';

export type Phase = { mode: 'closed'; connections: number; seconds: number } | { mode: 'open'; rate: number; connections: number; seconds: number; timeoutMs: number };

export interface LoadSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
  phases: Phase[];
  /** Processes whose CPU time is read around each phase. */
  cpuPids?: number[];
}

export interface Latencies {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  /** Measured wall time, s. */
  seconds: number;
  /** Requests sent (open: scheduled and sent). */
  sent: number;
  ok: Latencies;
  tooMany: Latencies;
  /** Other statuses by code. */
  other: Record<string, number>;
  errors: number;
  /** open: the most a request went out after its scheduled time, ms. */
  maxLagMs?: number;
  /** CPU time (user + system) of each of `cpuPids` during the phase, ms. */
  cpuMs: number[];
}

function summarize(values: number[]): Latencies {
  if (values.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  return { count: sorted.length, p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1]! };
}

class Recorder {
  readonly ok: number[] = [];
  readonly tooMany: number[] = [];
  readonly other: Record<string, number> = {};
  errors = 0;

  record(status: number, ms: number): void {
    if (status >= 200 && status < 300) this.ok.push(ms);
    else if (status === 429) this.tooMany.push(ms);
    else this.other[status] = (this.other[status] ?? 0) + 1;
  }

  result(seconds: number, sent: number, extra: Partial<LoadResult> = {}): LoadResult {
    return { seconds, sent, ok: summarize(this.ok), tooMany: summarize(this.tooMany), other: this.other, errors: this.errors, cpuMs: [], ...extra };
  }
}

async function closedLoop(spec: LoadSpec, phase: Extract<Phase, { mode: 'closed' }>): Promise<LoadResult> {
  const rec = new Recorder();
  const started = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: spec.url, method: 'POST', headers: spec.headers, body: spec.body, connections: phase.connections, pipelining: 1, duration: phase.seconds, timeout: 10 },
      (err, res) => (err ? reject(err as Error) : resolve(res)),
    );
    instance.on('response', (_client, status, _bytes, ms) => rec.record(status, ms));
  });
  const seconds = (performance.now() - started) / 1000;
  rec.errors = result.errors;
  return rec.result(seconds, result.requests.sent);
}

async function openLoop(spec: LoadSpec, phase: Extract<Phase, { mode: 'open' }>): Promise<LoadResult> {
  const url = new URL(spec.url);
  const pool = new Pool(url.origin, { connections: phase.connections, pipelining: 1, headersTimeout: phase.timeoutMs, bodyTimeout: phase.timeoutMs });
  const rec = new Recorder();
  const total = Math.round(phase.rate * phase.seconds);
  const interval = 1000 / phase.rate;
  const pending = new Set<Promise<void>>();
  let maxLagMs = 0;
  const started = performance.now();
  const fire = () => {
    const sentAt = performance.now();
    const p = pool
      .request({ path: url.pathname, method: 'POST', headers: spec.headers, body: spec.body })
      .then(async (res) => {
        await res.body.dump();
        rec.record(res.statusCode, performance.now() - sentAt);
      })
      .catch(() => void (rec.errors += 1))
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    // Everything due (a late timer sends what it owes at once, each timed from its own schedule).
    while (sent < total && started + sent * interval <= now) {
      const scheduled = started + sent * interval;
      maxLagMs = Math.max(maxLagMs, now - scheduled);
      fire();
      sent += 1;
    }
    if (sent < total) await new Promise((r) => setTimeout(r, Math.max(0, started + sent * interval - performance.now())));
  }
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return rec.result(seconds, sent, { maxLagMs });
}

async function runPhases(spec: LoadSpec): Promise<LoadResult[]> {
  const results: LoadResult[] = [];
  for (const phase of spec.phases) {
    const cpuMs = (pid: number) => processUsage(pid).cpuS * 1000;
    const cpuBefore = (spec.cpuPids ?? []).map(cpuMs);
    const result = phase.mode === 'closed' ? await closedLoop(spec, phase) : await openLoop(spec, phase);
    result.cpuMs = (spec.cpuPids ?? []).map((pid, i) => cpuMs(pid) - cpuBefore[i]!);
    results.push(result);
  }
  return results;
}

/** Runs the phases in a process of their own pinned to `cores`, bounded by their durations plus a margin. */
export async function runLoad(spec: LoadSpec, cores: string): Promise<LoadResult[]> {
  const entry = fileURLToPath(import.meta.url);
  const child = spawnPinned(cores, process.execPath, ['--import', 'tsx', entry], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end(JSON.stringify(spec));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => void (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
  const limitMs = spec.phases.reduce((sum, p) => sum + p.seconds * 1000, 0) + 60_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`the load generator failed (${String(code ?? signal)}${signal === 'SIGKILL' ? `, killed after ${limitMs} ms` : ''}): ${stderr.trim()}`);
  return JSON.parse(stdout) as LoadResult[];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const results = await runPhases(JSON.parse(input) as LoadSpec);
  process.stdout.write(`${JSON.stringify(results)}\n`);
  // autocannon or undici may keep a socket being closed: the summary is out.
  process.exit(0);
}
