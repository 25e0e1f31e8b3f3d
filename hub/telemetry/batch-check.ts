/**
 * What a telemetry batch must satisfy beyond its schema before the hub stores it: times that are
 * dates (a device clock far off is no reason to refuse: filing-time.ts), and latency histograms
 * with the fleet's bucket bounds (anything else could not be merged with other devices' figures).
 */
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import type { MetricsBatch, TelemetryBatch } from '../../shared/protocol.js';

function timeProblem(what: string, text: string): string | undefined {
  return Number.isNaN(Date.parse(text)) ? `${what} ${JSON.stringify(text)} is not a date` : undefined;
}

function sameBounds(bounds: readonly number[]): boolean {
  return bounds.length === LATENCY_BOUNDS_MS.length && bounds.every((b, i) => b === LATENCY_BOUNDS_MS[i]);
}

function metricsProblem(batch: MetricsBatch): string | undefined {
  const time = timeProblem('from', batch.from) ?? timeProblem('to', batch.to);
  if (time) return time;
  // `from` after `to` is not refused: a device clock stepped back (NTP) does that, and the counts
  // are still real. Refusing would lose them, since a refused batch is acknowledged and dropped.
  for (const [service, figures] of Object.entries(batch.services)) {
    const h = figures.latencyMs;
    if (!sameBounds(h.boundsMs)) return `services.${service}.latencyMs: bounds [${h.boundsMs.join(', ')}] are not the fleet's [${LATENCY_BOUNDS_MS.join(', ')}] ms`;
    if (h.counts.length !== h.boundsMs.length + 1) return `services.${service}.latencyMs: ${h.counts.length} counts for ${h.boundsMs.length} bounds (expected one per bound plus +Inf)`;
  }
  return undefined;
}

/** Why the hub refuses `batch`, or undefined when it can be stored. */
export function batchProblem(batch: TelemetryBatch): string | undefined {
  if (batch.kind === 'metrics') return metricsProblem(batch);
  const entries = batch.kind === 'captures' ? batch.samples : batch.kind === 'logs' ? batch.lines : batch.items;
  const field = batch.kind === 'captures' ? 'samples' : batch.kind === 'logs' ? 'lines' : 'items';
  for (const [i, sample] of entries.entries()) {
    const problem = timeProblem(`${field}[${i}].ts`, sample.ts);
    if (problem) return problem;
  }
  return undefined;
}
