/**
 * Latency histograms with fixed bucket bounds, the same on every device, so the hub can merge any
 * number of them by adding counts bucket by bucket and still estimate percentiles for a service
 * across the fleet. The price of fixed buckets is resolution: a percentile is known only to lie in
 * one bucket, and the estimate inside it is a linear interpolation.
 */
import { EdgemlError, ErrorCodes } from './errors.js';

/** Upper bounds (inclusive, ms) of the latency buckets; one more bucket after the last is +Inf. */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]);

export interface LatencyHistogram {
  boundsMs: readonly number[];
  /** Not cumulative: `counts[i]` is the number of requests in (bound[i-1], bound[i]]; the last is +Inf. */
  counts: number[];
  sumMs: number;
}

export const HISTOGRAM_MISMATCH = ErrorCodes.HISTOGRAM_MISMATCH;

/** Two histograms that cannot be added: different bounds, or counts that do not fit their bounds. */
export class HistogramMismatchError extends EdgemlError {
  constructor(message: string) {
    super(HISTOGRAM_MISMATCH, message);
    this.name = 'HistogramMismatchError';
  }
}

export function emptyHistogram(boundsMs: readonly number[] = LATENCY_BOUNDS_MS): LatencyHistogram {
  return { boundsMs, counts: new Array<number>(boundsMs.length + 1).fill(0), sumMs: 0 };
}

function checkShape(h: LatencyHistogram, which: string): void {
  if (h.counts.length !== h.boundsMs.length + 1) {
    throw new HistogramMismatchError(`histogram ${which} has ${h.counts.length} counts for ${h.boundsMs.length} bounds (expected ${h.boundsMs.length + 1}: one per bound plus +Inf)`);
  }
}

/**
 * The sum of two histograms, as a new one. Histograms with different bounds are refused rather than
 * re-bucketed: re-bucketing would invent a distribution inside buckets that nobody measured.
 */
export function mergeHistograms(a: LatencyHistogram, b: LatencyHistogram): LatencyHistogram {
  checkShape(a, 'a');
  checkShape(b, 'b');
  if (a.boundsMs.length !== b.boundsMs.length || a.boundsMs.some((bound, i) => bound !== b.boundsMs[i])) {
    throw new HistogramMismatchError(`cannot merge latency histograms with different bucket bounds: [${a.boundsMs.join(', ')}] and [${b.boundsMs.join(', ')}] ms`);
  }
  return { boundsMs: a.boundsMs, counts: a.counts.map((n, i) => n + b.counts[i]!), sumMs: a.sumMs + b.sumMs };
}

/** The total number of observations. */
export function histogramCount(h: LatencyHistogram): number {
  return h.counts.reduce((sum, n) => sum + n, 0);
}

/**
 * Estimates the `p`th percentile (0–100) in ms, or `undefined` for an empty histogram (no requests
 * is not a latency of 0).
 *
 * Resolution: the answer always lies in the bucket that holds the true value (the one where the
 * cumulative count reaches p% of the total), placed by linear interpolation between that bucket's
 * bounds as if its observations were spread evenly; the first bucket starts at 0. The error is at
 * most the width of that bucket. In the +Inf bucket there is no upper bound to interpolate
 * towards, so the answer is the last finite bound: a lower bound on the truth (what Prometheus'
 * `histogram_quantile` does too); compare with `boundsMs.at(-1)` to show it as "> N ms".
 */
export function percentile(h: LatencyHistogram, p: number): number | undefined {
  if (!Number.isFinite(p) || p < 0 || p > 100) throw new RangeError(`percentile must be between 0 and 100, not ${p}`);
  checkShape(h, 'to read');
  const total = histogramCount(h);
  if (total === 0) return undefined;
  const rank = (p / 100) * total;
  let below = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const n = h.counts[i]!;
    // Empty buckets are skipped so that p0 lands on the first bucket with an observation in it.
    if (n === 0 || below + n < rank) {
      below += n;
      continue;
    }
    const lower = i === 0 ? 0 : h.boundsMs[i - 1]!;
    if (i === h.boundsMs.length) return lower;
    const upper = h.boundsMs[i]!;
    return lower + ((upper - lower) * (rank - below)) / n;
  }
  // Unreachable: the last non-empty bucket always reaches rank <= total.
  return h.boundsMs.at(-1);
}
