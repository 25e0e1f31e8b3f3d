/**
 * Running totals per service across the fleet since the hub started, for `/metrics`: Prometheus
 * takes rates and quantiles from counters itself, so these only ever grow (a hub restart is a
 * counter reset, which Prometheus expects). Only batches stored for the first time are added, so a
 * redelivery never counts twice.
 */
import { CustomSum } from '../../shared/custom-metrics.js';
import { emptyHistogram, mergeHistograms, type LatencyHistogram } from '../../shared/latency-histogram.js';
import type { Logger } from '../../shared/logger.js';
import type { CustomIntervalMetrics, MetricsBatch, OutboxStatus, ServiceIntervalMetrics } from '../../shared/protocol.js';
import { addScaling, noScaling, type ScalingCounts } from './scaling-counts.js';

export interface ServiceTotals {
  requests: number;
  responses: ServiceIntervalMetrics['responses'];
  rejected: number;
  queueTimeouts: number;
  latencyMs: LatencyHistogram;
  /** Autoscaler decisions; batches from agents older than replicas add none. */
  scaling: ScalingCounts;
  /**
   * Scoring code's own counters and observations (at most MAX_CUSTOM_METRICS names per service; new
   * names past that are counted in `customLeftOut`). Always set by FleetCounters.
   */
  custom?: CustomIntervalMetrics;
  customLeftOut?: number;
}

/** Summed in place; a copy goes out. */
type RunningTotals = Omit<ServiceTotals, 'custom' | 'customLeftOut'> & { custom: CustomSum; customLeftOut: number };

export type OutboxDrops = OutboxStatus['dropped'];

/**
 * Service names come from devices: past this many, new ones are not tracked (and a warning says
 * so), or a device making up names could grow the hub's memory and every scrape without bound.
 */
export const MAX_TRACKED_SERVICES = 1000;

export class FleetCounters {
  readonly #services = new Map<string, RunningTotals>();
  /** Each device's latest report (by its interval end): the counts are cumulative on the device. */
  readonly #outbox = new Map<string, { to: number; dropped: OutboxDrops }>();
  #warnedFull = false;

  constructor(private readonly logger: Logger) {}

  add(device: string, batch: MetricsBatch): void {
    for (const [name, figures] of Object.entries(batch.services)) {
      const totals = this.#totalsOf(name);
      if (!totals) continue;
      totals.requests += figures.requests;
      for (const cls of ['2xx', '3xx', '4xx', '5xx'] as const) totals.responses[cls] += figures.responses[cls];
      totals.rejected += figures.rejected;
      totals.queueTimeouts += figures.queueTimeouts;
      totals.latencyMs = mergeHistograms(totals.latencyMs, figures.latencyMs);
      totals.scaling = addScaling(totals.scaling, figures.scaling);
      totals.customLeftOut += totals.custom.add(figures.custom);
    }
    const to = Date.parse(batch.to);
    const last = this.#outbox.get(device);
    // A batch redelivered after a newer one must not take the figure back.
    if (!last || to >= last.to) this.#outbox.set(device, { to, dropped: { ...batch.outbox.dropped } });
  }

  /** Copies, by service name. */
  services(): Map<string, ServiceTotals> {
    return new Map([...this.#services].sort(([a], [b]) => a.localeCompare(b)).map(([name, { custom, ...t }]) => [name, { ...structuredClone(t), custom: custom.toWire() }]));
  }

  /** The batches the devices' outboxes dropped, as each last reported, added up over devices. */
  outboxDropped(): OutboxDrops {
    const sum: OutboxDrops = { metrics: 0, capture: 0 };
    for (const { dropped } of this.#outbox.values()) {
      sum.metrics += dropped.metrics;
      sum.capture += dropped.capture;
    }
    return sum;
  }

  #totalsOf(name: string): RunningTotals | undefined {
    let totals = this.#services.get(name);
    if (totals) return totals;
    if (this.#services.size >= MAX_TRACKED_SERVICES) {
      if (!this.#warnedFull) this.logger.warn({ service: name, max: MAX_TRACKED_SERVICES }, 'telemetry: too many services to track in /metrics; new ones are left out');
      this.#warnedFull = true;
      return undefined;
    }
    totals = { requests: 0, responses: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, rejected: 0, queueTimeouts: 0, latencyMs: emptyHistogram(), scaling: noScaling(), custom: new CustomSum(), customLeftOut: 0 };
    this.#services.set(name, totals);
    return totals;
  }
}
