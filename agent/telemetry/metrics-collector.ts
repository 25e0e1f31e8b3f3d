/**
 * Every interval, one metrics batch into the outbox's metrics lane (issue 7 part 1). The gateway's
 * counts are taken (and reset) at the start of each tick, so consecutive batches cover the agent's
 * life without gaps or overlaps, however long the probes take; on close the last partial interval
 * goes in too, so a clean stop loses no counts. Each batch is checked against the protocol before
 * it is queued: one the broker would refuse must not wait on disk to be refused later. The
 * autoscaler's decisions of the interval ride along as each service's `scaling`, and the scoring
 * code's own figures (read from the replicas at the tick: custom-metrics-reader.ts) as its `custom`.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import { encodeMessage, type ContainerMetrics, type CustomIntervalMetrics, type DeviceMetrics, type ServiceIntervalMetrics } from '../../shared/protocol.js';
import type { MetricsSource } from '../gateway/metrics.js';
import type { ScalingCounts } from '../scale/autoscaler.js';
import { metricsBatch, outboxStatus } from './metrics-batch.js';
import type { Batch, Outbox } from './outbox.js';

export interface MetricsCollectorOptions {
  intervalMs: number;
  gateway: Pick<MetricsSource, 'takeInterval'>;
  /** Never reject: a probe that fails gives nulls. */
  device: () => Promise<DeviceMetrics>;
  containers: () => Promise<ContainerMetrics[]>;
  /** The autoscaler's decisions since the previous call, per service that had any. */
  scaling?: { takeInterval(): Record<string, ScalingCounts> };
  /** Scoring code's own figures since the previous call, per service that counted any; never rejects. */
  custom?: { takeInterval(): Promise<Record<string, CustomIntervalMetrics>> };
  /** The queue's counts, reported in each batch. */
  outbox: Pick<Outbox, 'dropped' | 'size'>;
  append: (batch: Batch) => Promise<void>;
  nextId: () => string;
  clock: Clock;
  logger: Logger;
}

/** A service that scaled in an interval without a request (the load stopped, replicas went). */
function idleService(): ServiceIntervalMetrics {
  return {
    requests: 0,
    responses: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    unauthenticated: 0,
    rejected: 0,
    queueTimeouts: 0,
    upstreamErrors: 0,
    aborted: 0,
    inFlight: 0,
    queued: 0,
    latencyMs: { boundsMs: [...LATENCY_BOUNDS_MS], counts: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0), sumMs: 0 },
  };
}

/** Only services that scaled carry `scaling`: batches stay small on a device whose counts do not move. */
function withScaling(services: Record<string, ServiceIntervalMetrics>, scaling: Record<string, ScalingCounts>): void {
  for (const [name, counts] of Object.entries(scaling)) {
    services[name] = { ...(services[name] ?? idleService()), scaling: { up: counts.up, down: counts.down, held: counts.held } };
  }
}

/** A service whose code counted something carries `custom`, even in an interval without requests (a background job). */
function withCustom(services: Record<string, ServiceIntervalMetrics>, custom: Record<string, CustomIntervalMetrics>): void {
  for (const [name, figures] of Object.entries(custom)) services[name] = { ...(services[name] ?? idleService()), custom: figures };
}

export class MetricsCollector {
  #timer: unknown = null;
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(private readonly o: MetricsCollectorOptions) {}

  start(): void {
    this.schedule(this.o.intervalMs);
  }

  /** Waits for a batch in progress, then queues the last partial interval. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.o.clock.clearTimeout(this.#timer);
    await this.#running;
    await this.collect();
  }

  private schedule(ms: number): void {
    this.#timer = this.o.clock.setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    const started = this.o.clock.now();
    this.#running = this.collect().finally(() => {
      this.#running = null;
      // Ticks keep their cadence; one that overran its interval is followed at once, never overlapped.
      if (!this.#closed) this.schedule(Math.max(0, this.o.intervalMs - (this.o.clock.now() - started)));
    });
  }

  private async collect(): Promise<void> {
    const report = this.o.gateway.takeInterval();
    const scaling = this.o.scaling?.takeInterval() ?? {};
    try {
      const [device, containers, custom] = await Promise.all([this.o.device(), this.o.containers(), this.o.custom?.takeInterval() ?? {}]);
      const batch = metricsBatch({ id: this.o.nextId(), report, device, containers, outbox: outboxStatus(this.o.outbox) });
      withScaling(batch.services, scaling);
      withCustom(batch.services, custom);
      await this.o.append({ id: batch.id, lane: 'metrics', bytes: encodeMessage('telemetry', batch) });
    } catch (err) {
      // A full disk, or a bug: the interval's counts are gone, and the log must say which ones.
      this.o.logger.error({ err, from: new Date(report.from).toISOString(), to: new Date(report.to).toISOString() }, 'a metrics batch was lost');
    }
  }
}
