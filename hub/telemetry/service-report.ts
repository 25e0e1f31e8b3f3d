/**
 * A service's figures over a time window, per device and for the fleet, from the stored metrics
 * batches whose interval ends in the window. Counts are exact sums; percentiles come from the
 * histograms merged bucket by bucket (shared/latency-histogram.ts), so they are known to the
 * resolution of one bucket. Replicas are a gauge: each device's latest count in the window, and their
 * sum for the fleet; the autoscaler's decisions are counts like the requests, and so are the
 * scoring code's own figures (`custom`, for the fleet). The reading of the
 * intervals and their sums are exported for the per-bucket series (service-series.ts), so a series
 * adds up to the report over the same window.
 */
import type { PercentileName, ServiceCustomMetrics, ServiceFigures, ServiceTelemetry } from '../../shared/api/telemetry.js';
import { CustomSum } from '../../shared/custom-metrics.js';
import { histogramCount, percentile, type LatencyHistogram } from '../../shared/latency-histogram.js';
import type { ServiceIntervalMetrics } from '../../shared/protocol.js';
import type { TelemetryArchive } from './archive.js';
import { addRequests, intervalRequests, noRequests, serviceIntervalOf, type RequestTotals } from './request-totals.js';
import { addScaling, noScaling, type ScalingCounts } from './scaling-counts.js';

export interface TimeWindow {
  /** ms since the epoch; since inclusive, until exclusive. */
  since: number;
  until: number;
}

export interface ServiceQuery extends TimeWindow {
  service: string;
  device?: string | undefined;
}

/** One device's figures for the service from one stored metrics batch. */
export interface ServiceInterval {
  device: string;
  /** ms since the epoch: the interval's end as filed (the time the window is matched against). */
  ts: number;
  metrics: ServiceIntervalMetrics;
}

/** The service's intervals in the batches whose interval ends in the window, in the archive's (write) order. */
export async function* serviceIntervals(archive: Pick<TelemetryArchive, 'read'>, query: ServiceQuery): AsyncIterable<ServiceInterval> {
  const records = archive.read({ kind: 'metrics', device: query.device, since: new Date(query.since), until: new Date(query.until) });
  for await (const record of records) {
    const metrics = serviceIntervalOf(record, query.service);
    if (metrics) yield { device: record.device, ts: record.ts, metrics };
  }
}

/** What any set of intervals adds up to: exact counts and the merged latency histogram. */
export interface IntervalCounts extends RequestTotals {
  rejected: number;
  queueTimeouts: number;
  scaling: ScalingCounts;
}

export function noCounts(): IntervalCounts {
  return { ...noRequests(), rejected: 0, queueTimeouts: 0, scaling: noScaling() };
}

export function intervalCounts(m: ServiceIntervalMetrics): IntervalCounts {
  return { ...intervalRequests(m), rejected: m.rejected, queueTimeouts: m.queueTimeouts, scaling: m.scaling ?? noScaling() };
}

export function addCounts(a: IntervalCounts, b: IntervalCounts): IntervalCounts {
  return {
    ...addRequests(a, b),
    rejected: a.rejected + b.rejected,
    queueTimeouts: a.queueTimeouts + b.queueTimeouts,
    scaling: addScaling(a.scaling, b.scaling),
  };
}

interface Totals extends IntervalCounts {
  /** A gauge, not a sum: a device's ready replicas at the end of its latest interval; for the fleet, the devices' added up. */
  replicas: number | null;
}

function emptyTotals(): Totals {
  return { ...noCounts(), replicas: null };
}

/** Two devices' figures: replicas on both are on the fleet. */
function sumDevices(a: Totals, b: Totals): Totals {
  return { ...addCounts(a, b), replicas: a.replicas === null && b.replicas === null ? null : (a.replicas ?? 0) + (b.replicas ?? 0) };
}

/** A device's figures so far and one more interval: its replicas are those of its latest interval that counted them. */
interface DeviceTotals {
  totals: Totals;
  replicasAt: number;
}

function addInterval(d: DeviceTotals, { metrics, ts }: ServiceInterval): DeviceTotals {
  const replicas = metrics.replicas ?? null;
  // Files are read in write order, not time order: a batch redelivered late must not take the count back.
  const newer = replicas !== null && (d.totals.replicas === null || ts >= d.replicasAt);
  return {
    totals: { ...addCounts(d.totals, intervalCounts(metrics)), replicas: newer ? replicas : d.totals.replicas },
    replicasAt: newer ? ts : d.replicasAt,
  };
}

const PERCENTILE_OF: Record<PercentileName, number> = { p50: 50, p95: 95, p99: 99 };

/** Whether the `p`th percentile lies in the open bucket above the last bound. */
function inOpenBucket(h: LatencyHistogram, p: number): boolean {
  const total = histogramCount(h);
  return total > 0 && total - h.counts.at(-1)! < (p / 100) * total;
}

export type CountFigures = Omit<ServiceFigures, 'replicas'>;

/** The figures of summed intervals over `seconds`: rates, error rate and percentiles. */
export function countFigures(c: IntervalCounts, seconds: number): CountFigures {
  const pct = (name: PercentileName) => percentile(c.latencyMs, PERCENTILE_OF[name]) ?? null;
  return {
    requests: c.requests,
    errors: c.errors,
    rejected: c.rejected,
    queueTimeouts: c.queueTimeouts,
    requestsPerSecond: seconds > 0 ? c.requests / seconds : 0,
    errorRate: c.requests > 0 ? c.errors / c.requests : null,
    p50: pct('p50'),
    p95: pct('p95'),
    p99: pct('p99'),
    atLeast: (Object.keys(PERCENTILE_OF) as PercentileName[]).filter((name) => inOpenBucket(c.latencyMs, PERCENTILE_OF[name])),
    scaling: c.scaling,
  };
}

function figuresOf(t: Totals, seconds: number): ServiceFigures {
  return { ...countFigures(t, seconds), replicas: t.replicas };
}

/** Names a report shows per service: a window spanning revisions may hold more than one batch's limit. */
const REPORT_CUSTOM_NAMES = 1000;

function customFigures(sum: CustomSum): ServiceCustomMetrics {
  return {
    counters: Object.fromEntries(sum.counters),
    observations: Object.fromEntries([...sum.observations].map(([name, o]) => [name, { ...o, mean: o.count > 0 ? o.sum / o.count : 0 }])),
  };
}

export async function serviceReport(
  archive: Pick<TelemetryArchive, 'read'>,
  query: ServiceQuery,
): Promise<ServiceTelemetry> {
  const byDevice = new Map<string, DeviceTotals>();
  const custom = new CustomSum(REPORT_CUSTOM_NAMES);
  for await (const interval of serviceIntervals(archive, query)) {
    custom.add(interval.metrics.custom);
    byDevice.set(interval.device, addInterval(byDevice.get(interval.device) ?? { totals: emptyTotals(), replicasAt: -Infinity }, interval));
  }
  const seconds = (query.until - query.since) / 1000;
  const devices = [...byDevice].sort(([a], [b]) => a.localeCompare(b)).map(([device, d]) => [device, d.totals] as const);
  const fleet = devices.reduce((sum, [, t]) => sumDevices(sum, t), emptyTotals());
  return {
    service: query.service,
    since: new Date(query.since).toISOString(),
    until: new Date(query.until).toISOString(),
    ...figuresOf(fleet, seconds),
    custom: customFigures(custom),
    devices: devices.map(([device, t]) => ({ device, ...figuresOf(t, seconds) })),
  };
}
