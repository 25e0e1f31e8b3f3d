/**
 * A service's figures over a time window, per device and for the fleet, from the stored metrics
 * batches whose interval ends in the window. Counts are exact sums; percentiles come from the
 * histograms merged bucket by bucket (shared/latency-histogram.ts), so they are known to the
 * resolution of one bucket. Replicas are a gauge: each device's latest count in the window, and their
 * sum for the fleet; the autoscaler's decisions are counts like the requests.
 */
import type { PercentileName, ServiceFigures, ServiceTelemetry } from '../../shared/api/telemetry.js';
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

interface Totals extends RequestTotals {
  rejected: number;
  queueTimeouts: number;
  scaling: ScalingCounts;
  /** A gauge, not a sum: a device's ready replicas at the end of its latest interval; for the fleet, the devices' added up. */
  replicas: number | null;
}

function emptyTotals(): Totals {
  return { ...noRequests(), rejected: 0, queueTimeouts: 0, scaling: noScaling(), replicas: null };
}

function sumCounts(a: Totals, b: Totals): Omit<Totals, 'replicas'> {
  return {
    ...addRequests(a, b),
    rejected: a.rejected + b.rejected,
    queueTimeouts: a.queueTimeouts + b.queueTimeouts,
    scaling: addScaling(a.scaling, b.scaling),
  };
}

/** Two devices' figures: replicas on both are on the fleet. */
function sumDevices(a: Totals, b: Totals): Totals {
  return { ...sumCounts(a, b), replicas: a.replicas === null && b.replicas === null ? null : (a.replicas ?? 0) + (b.replicas ?? 0) };
}

/** A device's figures so far and one more interval: its replicas are those of its latest interval that counted them. */
interface DeviceTotals {
  totals: Totals;
  replicasAt: number;
}

function addInterval(d: DeviceTotals, m: ServiceIntervalMetrics, ts: number): DeviceTotals {
  const interval: Totals = { ...intervalRequests(m), rejected: m.rejected, queueTimeouts: m.queueTimeouts, scaling: m.scaling ?? noScaling(), replicas: m.replicas ?? null };
  // Files are read in write order, not time order: a batch redelivered late must not take the count back.
  const newer = interval.replicas !== null && (d.totals.replicas === null || ts >= d.replicasAt);
  return {
    totals: { ...sumCounts(d.totals, interval), replicas: newer ? interval.replicas : d.totals.replicas },
    replicasAt: newer ? ts : d.replicasAt,
  };
}

const PERCENTILE_OF: Record<PercentileName, number> = { p50: 50, p95: 95, p99: 99 };

/** Whether the `p`th percentile lies in the open bucket above the last bound. */
function inOpenBucket(h: LatencyHistogram, p: number): boolean {
  const total = histogramCount(h);
  return total > 0 && total - h.counts.at(-1)! < (p / 100) * total;
}

function figuresOf(t: Totals, seconds: number): ServiceFigures {
  const pct = (name: PercentileName) => percentile(t.latencyMs, PERCENTILE_OF[name]) ?? null;
  return {
    requests: t.requests,
    errors: t.errors,
    rejected: t.rejected,
    queueTimeouts: t.queueTimeouts,
    requestsPerSecond: seconds > 0 ? t.requests / seconds : 0,
    errorRate: t.requests > 0 ? t.errors / t.requests : null,
    p50: pct('p50'),
    p95: pct('p95'),
    p99: pct('p99'),
    atLeast: (Object.keys(PERCENTILE_OF) as PercentileName[]).filter((name) => inOpenBucket(t.latencyMs, PERCENTILE_OF[name])),
    replicas: t.replicas,
    scaling: t.scaling,
  };
}

export async function serviceReport(
  archive: Pick<TelemetryArchive, 'read'>,
  query: { service: string; device?: string | undefined } & TimeWindow,
): Promise<ServiceTelemetry> {
  const byDevice = new Map<string, DeviceTotals>();
  const records = archive.read({ kind: 'metrics', device: query.device, since: new Date(query.since), until: new Date(query.until) });
  for await (const record of records) {
    const figures = serviceIntervalOf(record, query.service);
    if (!figures) continue;
    byDevice.set(record.device, addInterval(byDevice.get(record.device) ?? { totals: emptyTotals(), replicasAt: -Infinity }, figures, record.ts));
  }
  const seconds = (query.until - query.since) / 1000;
  const devices = [...byDevice].sort(([a], [b]) => a.localeCompare(b)).map(([device, d]) => [device, d.totals] as const);
  const fleet = devices.reduce((sum, [, t]) => sumDevices(sum, t), emptyTotals());
  return {
    service: query.service,
    since: new Date(query.since).toISOString(),
    until: new Date(query.until).toISOString(),
    ...figuresOf(fleet, seconds),
    devices: devices.map(([device, t]) => ({ device, ...figuresOf(t, seconds) })),
  };
}
