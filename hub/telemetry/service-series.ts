/**
 * A service's figures over time: the window split into equal buckets, each batch counted in the
 * bucket its interval ends in — the rule the report (service-report.ts) applies to the whole window,
 * with the same reading and sums, so the buckets add up to the report's counts.
 */
import type { ServiceSeries } from '../../shared/api/telemetry.js';
import type { TelemetryArchive } from './archive.js';
import { addCounts, countFigures, intervalCounts, noCounts, serviceIntervals, type ServiceQuery } from './service-report.js';

export async function serviceSeries(archive: Pick<TelemetryArchive, 'read'>, query: ServiceQuery & { points: number }): Promise<ServiceSeries> {
  const windowMs = query.until - query.since;
  // Whole seconds so bucket starts read well on a chart's axis; the last bucket may be cut short by `until`.
  const stepMs = Math.ceil(windowMs / 1000 / query.points) * 1000;
  const buckets = Array.from({ length: Math.ceil(windowMs / stepMs) }, noCounts);
  for await (const { ts, metrics } of serviceIntervals(archive, query)) {
    const i = Math.floor((ts - query.since) / stepMs);
    buckets[i] = addCounts(buckets[i]!, intervalCounts(metrics));
  }
  return {
    service: query.service,
    since: new Date(query.since).toISOString(),
    until: new Date(query.until).toISOString(),
    stepSeconds: stepMs / 1000,
    points: buckets.map((counts, i) => {
      const start = query.since + i * stepMs;
      const { requests, errors, rejected, queueTimeouts, requestsPerSecond, errorRate, p50, p95, p99, atLeast } = countFigures(counts, Math.min(stepMs, query.until - start) / 1000);
      return { ts: new Date(start).toISOString(), requests, errors, rejected, queueTimeouts, requestsPerSecond, errorRate, p50, p95, p99, atLeast };
    }),
  };
}
