/**
 * At each telemetry tick, `GET /metrics` from every ready replica of every service (the gateway's
 * routes), at once and each within a timeout, then the interval's figures per service
 * (custom-metrics.ts). A replica that does not answer, answers late or answers nonsense is counted
 * and left out of this interval; it never holds up or fails the batch. A runtime older than custom
 * metrics answers 404: that is no figures, not a failure.
 */
import http from 'node:http';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { CustomIntervalMetrics } from '../../shared/protocol.js';
import type { RouteTable } from '../reconcile/routes.js';
import { CustomSum } from '../../shared/custom-metrics.js';
import { CustomMetricsDeltas, parseContainerMetrics } from './custom-metrics.js';

export interface ReadyReplica {
  service: string;
  container: string;
  port: number;
}

/** The parsed JSON body, or undefined when the container serves no `/metrics` (404). Rejects on anything else. */
export type MetricsFetch = (port: number, signal: AbortSignal) => Promise<unknown>;

export interface CustomMetricsReaderOptions {
  replicas: () => readonly ReadyReplica[];
  fetch: MetricsFetch;
  timeoutMs: number;
  clock: Clock;
  logger: Logger;
}

/** A body larger than this is refused: the contract's 100 names fit in a few KiB. */
const MAX_BODY_BYTES = 256 * 1024;

/** Every replica in rotation, from the gateway's routing table. */
export function routeReplicas(routes: Pick<RouteTable, 'list'>): () => ReadyReplica[] {
  return () => routes.list().flatMap((r) => r.replicas.map(({ container, port }) => ({ service: r.service, container, port })));
}

/** `GET http://127.0.0.1:PORT/metrics`, the scoring container's own port. */
export const loopbackMetricsFetch: MetricsFetch = (port, signal) =>
  new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', signal, headers: { accept: 'application/json' } }, (res) => {
      if (res.statusCode === 404) {
        res.resume();
        resolve(undefined);
        return;
      }
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET /metrics answered ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_BODY_BYTES) req.destroy(new Error(`GET /metrics: body over ${MAX_BODY_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(new Error(`GET /metrics: not JSON (${(err as Error).message})`));
        }
      });
    });
    req.on('error', reject);
  });

export class CustomMetricsReader {
  readonly #deltas: CustomMetricsDeltas;
  #failures = 0;
  #leftOut = 0;
  /** Containers whose failure was logged at warn: the next ones go to debug until it answers again. */
  readonly #warned = new Set<string>();

  constructor(private readonly o: CustomMetricsReaderOptions) {
    this.#deltas = new CustomMetricsDeltas(o.clock.now());
  }

  /** Reads that failed (no answer in time, an error status, a body that is not the contract's) since the start. */
  failures(): number {
    return this.#failures;
  }

  /** Figures left out since the start: bad names or values, names past the 100th. */
  leftOut(): number {
    return this.#leftOut;
  }

  /** The interval's figures per service that counted any. Never rejects. */
  async takeInterval(): Promise<Record<string, CustomIntervalMetrics>> {
    const replicas = this.o.replicas();
    const readings = await Promise.all(replicas.map(async (r) => ({ r, figures: await this.#read(r) })));
    this.#deltas.keepOnly(new Set(replicas.map((r) => r.container)));
    const sums = new Map<string, CustomSum>();
    for (const { r, figures } of readings) {
      if (!figures) continue;
      let sum = sums.get(r.service);
      if (!sum) sums.set(r.service, (sum = new CustomSum()));
      this.#leftOut += sum.add(figures);
    }
    const out: Record<string, CustomIntervalMetrics> = {};
    for (const [service, sum] of sums) if (!sum.empty()) out[service] = sum.toWire();
    return out;
  }

  async #read(r: ReadyReplica): Promise<CustomIntervalMetrics | undefined> {
    const abort = new AbortController();
    const timer = this.o.clock.setTimeout(() => abort.abort(new Error(`no answer within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
    try {
      const body = await this.o.fetch(r.port, abort.signal);
      if (body === undefined) return undefined;
      const parsed = parseContainerMetrics(body);
      if (!parsed.ok) throw new Error(`GET /metrics: ${parsed.error}`);
      this.#leftOut += parsed.leftOut;
      this.#warned.delete(r.container);
      return this.#deltas.delta(r.container, parsed.value);
    } catch (err) {
      this.#failures++;
      const level = this.#warned.has(r.container) ? 'debug' : 'warn';
      this.#warned.add(r.container);
      const reason = abort.signal.aborted ? (abort.signal.reason as Error).message : (err as Error).message;
      this.o.logger[level]({ service: r.service, container: r.container, port: r.port, reason, failures: this.#failures }, 'custom metrics not read from a replica; left out of this interval');
      return undefined;
    } finally {
      this.o.clock.clearTimeout(timer);
    }
  }
}
