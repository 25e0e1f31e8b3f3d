/**
 * What a telemetry batch must satisfy beyond its schema before the hub stores it: times that are
 * dates, in order and not ahead of the hub, and latency histograms with the fleet's bucket bounds
 * (anything else could not be merged with other devices' figures later).
 */
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import type { MetricsBatch, TelemetryBatch } from '../../shared/protocol.js';

/** A device clock this far ahead of the hub's is wrong, not early: its batches would sit in days to come. */
export const MAX_CLOCK_AHEAD_MS = 24 * 60 * 60 * 1000;

function timeProblem(what: string, text: string, now: number): string | undefined {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return `${what} ${JSON.stringify(text)} is not a date`;
  if (ms > now + MAX_CLOCK_AHEAD_MS) return `${what} ${text} is more than a day ahead of the hub's clock`;
  return undefined;
}

function sameBounds(bounds: readonly number[]): boolean {
  return bounds.length === LATENCY_BOUNDS_MS.length && bounds.every((b, i) => b === LATENCY_BOUNDS_MS[i]);
}

function metricsProblem(batch: MetricsBatch, now: number): string | undefined {
  const time = timeProblem('from', batch.from, now) ?? timeProblem('to', batch.to, now);
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

/** Why the hub refuses `batch`, or undefined when it can be stored. `now` is the hub's clock. */
export function batchProblem(batch: TelemetryBatch, now: number): string | undefined {
  if (batch.kind === 'metrics') return metricsProblem(batch, now);
  for (const [i, sample] of batch.samples.entries()) {
    const problem = timeProblem(`samples[${i}].ts`, sample.ts, now);
    if (problem) return problem;
  }
  return undefined;
}
