/** Fixed-bucket latency histograms (shared/latency-histogram.ts): merging and percentile estimates. */
import test from 'ava';
import {
  emptyHistogram,
  HISTOGRAM_MISMATCH,
  histogramCount,
  HistogramMismatchError,
  LATENCY_BOUNDS_MS,
  mergeHistograms,
  percentile,
  type LatencyHistogram,
} from '../../shared/latency-histogram.js';

/** What the gateway does per answer (agent/gateway/metrics.ts): the first bucket whose bound is >= ms. */
function histogramOf(values: readonly number[], boundsMs: readonly number[] = LATENCY_BOUNDS_MS): LatencyHistogram {
  const h = emptyHistogram(boundsMs);
  for (const ms of values) {
    const i = boundsMs.findIndex((bound) => ms <= bound);
    h.counts[i === -1 ? boundsMs.length : i]! += 1;
    h.sumMs += ms;
  }
  return h;
}

/** The exact percentile of the values (nearest rank), to compare estimates with. */
function exact(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The bucket (lower, upper] that holds `ms`. */
function bucketOf(ms: number): [number, number] {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
  if (i === -1) return [LATENCY_BOUNDS_MS.at(-1)!, Infinity];
  return [i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!, LATENCY_BOUNDS_MS[i]!];
}

/** A deterministic pseudo-random sequence (mulberry32), so the test is the same on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('merging adds counts bucket by bucket and sums, and leaves its inputs alone', (t) => {
  const a = histogramOf([1, 7, 7, 300]);
  const b = histogramOf([2, 20_000]);
  const merged = mergeHistograms(a, b);
  t.deepEqual(merged, histogramOf([1, 7, 7, 300, 2, 20_000]));
  t.is(histogramCount(merged), 6);
  t.deepEqual(a, histogramOf([1, 7, 7, 300]));
  t.deepEqual(mergeHistograms(emptyHistogram(), a), a, 'the empty histogram is the identity');
});

test('merging histograms with different bounds is refused with a stable code', (t) => {
  const err = t.throws(() => mergeHistograms(histogramOf([1]), histogramOf([1], [5, 10, 20])), { instanceOf: HistogramMismatchError });
  t.is(err?.code, HISTOGRAM_MISMATCH);
  t.regex(err!.message, /different bucket bounds/);
  const sameLengthOtherBounds = LATENCY_BOUNDS_MS.map((b, i) => (i === 3 ? b + 1 : b));
  t.throws(() => mergeHistograms(histogramOf([1]), histogramOf([1], sameLengthOtherBounds)), { instanceOf: HistogramMismatchError });
  const malformed: LatencyHistogram = { boundsMs: LATENCY_BOUNDS_MS, counts: [1, 2], sumMs: 3 };
  t.throws(() => mergeHistograms(histogramOf([1]), malformed), { instanceOf: HistogramMismatchError, message: /2 counts for 11 bounds/ });
});

test('an empty histogram has no percentiles (not 0 ms)', (t) => {
  t.is(percentile(emptyHistogram(), 50), undefined);
  t.is(percentile(emptyHistogram(), 99), undefined);
});

test('percentiles interpolate linearly within the bucket', (t) => {
  // 10 in (0, 5], 10 in (10, 25]: p50 is the top of the first bucket, p75 halfway through (10, 25].
  const h = histogramOf([...Array<number>(10).fill(3), ...Array<number>(10).fill(20)]);
  t.is(percentile(h, 50), 5);
  t.is(percentile(h, 75), 17.5);
  t.is(percentile(h, 100), 25);
  t.is(percentile(h, 0), 0, 'p0 is the bottom of the first bucket with anything in it');
  t.is(percentile(histogramOf([20, 20]), 0), 10, 'empty buckets below are skipped');
});

test('percentiles of known distributions fall in the bucket of the true value', (t) => {
  const next = random(7);
  const distributions: Record<string, number[]> = {
    uniform: Array.from({ length: 10_000 }, () => Math.floor(next() * 2000)),
    // Long-tailed, like real services: mostly fast, a few very slow.
    exponential: Array.from({ length: 10_000 }, () => Math.round(-Math.log(1 - next()) * 40)),
    constant: Array<number>(500).fill(42),
  };
  for (const [name, values] of Object.entries(distributions)) {
    const h = histogramOf(values);
    for (const p of [50, 95, 99]) {
      const truth = exact(values, p);
      const [lower, upper] = bucketOf(truth);
      const estimate = percentile(h, p)!;
      t.true(estimate >= lower && estimate <= upper, `${name} p${p}: estimate ${estimate} outside the bucket (${lower}, ${upper}] of the true ${truth}`);
    }
  }
  // Uniform on [0, 2000): interpolation is close to the truth, not just in the right bucket.
  const p50 = percentile(histogramOf(distributions.uniform!), 50)!;
  t.true(Math.abs(p50 - 1000) < 60, `uniform p50 ${p50}`);
});

test('a percentile in the +Inf bucket is the last finite bound: a lower bound on the truth', (t) => {
  const h = histogramOf([...Array<number>(90).fill(3), ...Array<number>(10).fill(60_000)]);
  t.is(percentile(h, 50), (5 * 50) / 90);
  t.is(percentile(h, 95), LATENCY_BOUNDS_MS.at(-1));
  t.is(percentile(h, 99), 10_000);
  t.is(percentile(histogramOf([99_999]), 50), 10_000);
});

test('a percentile outside 0-100 is a programming error', (t) => {
  t.throws(() => percentile(histogramOf([1]), 101), { instanceOf: RangeError });
  t.throws(() => percentile(histogramOf([1]), Number.NaN), { instanceOf: RangeError });
});
