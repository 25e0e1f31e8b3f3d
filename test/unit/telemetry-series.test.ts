/**
 * A service's series over a fake archive: buckets add up to the report of the same window, each batch
 * in the bucket of its interval end, percentiles per bucket, empty buckets, uneven windows and the
 * device filter.
 */
import test from 'ava';
import { renderServiceSeries } from '../../cli/commands/telemetry.js';
import type { TelemetryArchive } from '../../hub/telemetry/archive.js';
import type { ReadQuery } from '../../hub/telemetry/read-plan.js';
import type { StoredRecord } from '../../hub/telemetry/records.js';
import { serviceReport } from '../../hub/telemetry/service-report.js';
import { serviceSeries } from '../../hub/telemetry/service-series.js';
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import { metricsBatch, serviceInterval } from '../helpers/telemetry-batches.js';

const SINCE = Date.parse('2024-05-01T12:00:00.000Z');
const UNTIL = Date.parse('2024-05-01T13:00:00.000Z');

/** Metrics records filed at their interval end, read back like the archive: device and `since <= ts < until`. */
function archiveOf(records: StoredRecord[]): Pick<TelemetryArchive, 'read'> & { queries: ReadQuery[] } {
  const queries: ReadQuery[] = [];
  return {
    queries,
    read(query) {
      queries.push(query);
      const wanted = records.filter(
        (r) => r.kind === query.kind && (query.device === undefined || r.device === query.device) && r.ts >= query.since.getTime() && (query.until === undefined || r.ts < query.until.getTime()),
      );
      return (async function* () {
        yield* wanted;
      })();
    },
  };
}

/** `requests` answers of `device` for iris in an interval ending at `to`: `err5` 5xx (`queueTimeouts` of them 503), `rejected` 429, latencies in the given histogram buckets. */
function batch(
  device: string,
  to: string,
  requests: number,
  opts: { err5?: number; queueTimeouts?: number; rejected?: number; buckets?: Record<number, number>; service?: string } = {},
): StoredRecord {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  for (const [i, n] of Object.entries(opts.buckets ?? {})) counts[Number(i)] = n;
  const err5 = opts.err5 ?? 0;
  const rejected = opts.rejected ?? 0;
  const interval = serviceInterval({
    requests,
    responses: { '2xx': requests - err5 - rejected, '3xx': 0, '4xx': rejected, '5xx': err5 },
    rejected,
    queueTimeouts: opts.queueTimeouts ?? 0,
    latencyMs: { boundsMs: [...LATENCY_BOUNDS_MS], counts, sumMs: 0 },
  });
  const data = metricsBatch({ id: `${device}-${to}`, from: new Date(Date.parse(to) - 10_000).toISOString(), to, services: { [opts.service ?? 'iris']: interval } });
  return { kind: 'metrics', device, ts: Date.parse(to), data, batch: `${device}/${data.id}` };
}

const records = [
  batch('gw-1', '2024-05-01T12:00:00.000Z', 10, { buckets: { 0: 10 } }),
  batch('gw-2', '2024-05-01T12:05:00.000Z', 30, { err5: 3, rejected: 2, buckets: { 4: 25 } }),
  // On a bucket's start: that bucket, not the one before.
  batch('gw-1', '2024-05-01T12:10:00.000Z', 40, { err5: 1, buckets: { 0: 20, 4: 19 } }),
  batch('gw-2', '2024-05-01T12:59:59.999Z', 7, { rejected: 7 }),
  // Another service, and batches outside the window: in no bucket.
  batch('gw-1', '2024-05-01T12:30:00.000Z', 1000, { service: 'rose' }),
  batch('gw-1', '2024-05-01T11:59:59.999Z', 1000),
  batch('gw-2', '2024-05-01T13:00:00.000Z', 1000),
];

test('the buckets add up to the report of the same window, each batch in the bucket of its interval end', async (t) => {
  const archive = archiveOf(records);
  const series = await serviceSeries(archive, { service: 'iris', since: SINCE, until: UNTIL, points: 6 });
  const report = await serviceReport(archive, { service: 'iris', since: SINCE, until: UNTIL });
  t.like(series, { service: 'iris', since: '2024-05-01T12:00:00.000Z', until: '2024-05-01T13:00:00.000Z', stepSeconds: 600 });
  t.deepEqual(
    series.points.map((p) => [p.ts, p.requests, p.errors, p.rejected]),
    [
      ['2024-05-01T12:00:00.000Z', 40, 3, 2],
      ['2024-05-01T12:10:00.000Z', 40, 1, 0],
      ['2024-05-01T12:20:00.000Z', 0, 0, 0],
      ['2024-05-01T12:30:00.000Z', 0, 0, 0],
      ['2024-05-01T12:40:00.000Z', 0, 0, 0],
      ['2024-05-01T12:50:00.000Z', 7, 0, 7],
    ],
  );
  const sum = (key: 'requests' | 'errors' | 'rejected') => series.points.reduce((n, p) => n + p[key], 0);
  t.deepEqual([sum('requests'), sum('errors'), sum('rejected')], [report.requests, report.errors, report.rejected]);
  t.deepEqual([report.requests, report.errors, report.rejected], [87, 4, 9], 'the report counts what the buckets do, and not nothing');
});

test('each bucket has its own rates and percentiles; an empty bucket is zeros and nulls', async (t) => {
  const { points } = await serviceSeries(archiveOf(records), { service: 'iris', since: SINCE, until: UNTIL, points: 6 });
  // First bucket: 10 answers at 0-5 ms and 25 at 50-100 ms; second: 20 at 0-5 ms and 19 at 50-100 ms.
  t.like(points[0], { requestsPerSecond: 40 / 600, errorRate: 3 / 40, p50: 50 + (50 * (17.5 - 10)) / 25 });
  t.like(points[1], { requestsPerSecond: 40 / 600, errorRate: 1 / 40, p50: 5 * (19.5 / 20), p99: 50 + (50 * (38.61 - 20)) / 19 });
  t.deepEqual(points[2], {
    ts: '2024-05-01T12:20:00.000Z',
    requests: 0,
    errors: 0,
    rejected: 0,
    queueTimeouts: 0,
    requestsPerSecond: 0,
    errorRate: null,
    p50: null,
    p95: null,
    p99: null,
    atLeast: [],
  });
  t.like(points[5], { requests: 7, errorRate: 0, p50: null }, 'rejected requests have no latency in the histogram');
});

test('the device filter goes to the archive; an unknown service is all empty buckets', async (t) => {
  const archive = archiveOf(records);
  const one = await serviceSeries(archive, { service: 'iris', device: 'gw-2', since: SINCE, until: UNTIL, points: 6 });
  t.is(archive.queries.at(-1)?.device, 'gw-2');
  t.deepEqual(
    one.points.map((p) => p.requests),
    [30, 0, 0, 0, 0, 7],
  );
  const none = await serviceSeries(archive, { service: 'wine', since: SINCE, until: UNTIL, points: 4 });
  t.is(none.points.length, 4);
  t.true(none.points.every((p) => p.requests === 0 && p.p50 === null));
});

test('a window that does not divide into whole seconds: fewer points when short, the last bucket cut at until', async (t) => {
  const archive = archiveOf(records);
  const short = await serviceSeries(archive, { service: 'iris', since: SINCE, until: SINCE + 100_000, points: 60 });
  t.is(short.stepSeconds, 2);
  t.is(short.points.length, 50, 'two-second buckets: 50 cover 100 s');

  const uneven = await serviceSeries(archive, { service: 'iris', since: SINCE, until: UNTIL + 500, points: 60 });
  t.is(uneven.stepSeconds, 61);
  t.is(uneven.points.length, 60);
  const last = uneven.points.at(-1)!;
  t.is(last.ts, new Date(SINCE + 59 * 61_000).toISOString());
  t.is(last.requests, 1007, 'the batches at 12:59:59.999 and 13:00:00.000 are in the window now');
  t.is(last.requestsPerSecond, 1007 / 1.5, 'over the 1.5 s the last bucket has');
  t.is(
    uneven.points.reduce((n, p) => n + p.requests, 0),
    (await serviceReport(archive, { service: 'iris', since: SINCE, until: UNTIL + 500 })).requests,
  );
});

test('a percentile in the open bucket above the last bound is marked atLeast in its bucket, and the table shows it as "> N ms"', async (t) => {
  const open = LATENCY_BOUNDS_MS.length;
  const last = LATENCY_BOUNDS_MS.at(-1)!;
  const archive = archiveOf([
    // 98 answers under 5 ms and 2 past the last bound: p99 is only known to be above it, p50 and p95 are not.
    batch('gw-1', '2024-05-01T12:05:00.000Z', 100, { err5: 4, queueTimeouts: 3, buckets: { 0: 98, [open]: 2 } }),
    batch('gw-1', '2024-05-01T12:15:00.000Z', 10, { buckets: { 0: 10 } }),
  ]);
  const series = await serviceSeries(archive, { service: 'iris', since: SINCE, until: UNTIL, points: 6 });
  t.like(series.points[0], { requests: 100, errors: 4, queueTimeouts: 3, p99: last, atLeast: ['p99'] });
  t.true(series.points[0]!.p95! < 5);
  t.like(series.points[1], { requests: 10, queueTimeouts: 0, atLeast: [] });
  const report = await serviceReport(archive, { service: 'iris', since: SINCE, until: SINCE + 600_000 });
  t.deepEqual([report.atLeast, report.queueTimeouts], [series.points[0]!.atLeast, series.points[0]!.queueTimeouts], 'the bucket reads like the report of its window');

  const row = renderServiceSeries(series).split('\n').find((l) => l.startsWith('2024-05-01 12:00'));
  t.truthy(row);
  t.regex(row!, new RegExp(`> ${last} ms\\s*$`));
  t.is(row!.split('>').length, 2, `only p99 is a lower bound: ${row}`);
});
