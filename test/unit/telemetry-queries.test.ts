/**
 * The hub's telemetry ingest and queries over a fake archive: what a batch becomes in the archive,
 * what is refused, exact sums and merged percentiles per device and for the fleet, replicas and
 * scaling decisions, a device's bounded series, capture export filters, and the running totals for /metrics.
 */
import test from 'ava';
import { pino } from 'pino';
import type { AppendResult, TelemetryArchive } from '../../hub/telemetry/archive.js';
import { batchProblem } from '../../hub/telemetry/batch-check.js';
import { captureLines } from '../../hub/telemetry/capture-export.js';
import { deviceReport } from '../../hub/telemetry/device-report.js';
import { TelemetryArchiveCodes, TelemetryArchiveError } from '../../hub/telemetry/errors.js';
import { TelemetryIngest } from '../../hub/telemetry/ingest.js';
import type { ArchiveRecord, StoredRecord } from '../../hub/telemetry/records.js';
import type { ReadQuery } from '../../hub/telemetry/read-plan.js';
import { serviceReport } from '../../hub/telemetry/service-report.js';
import { MAX_SERIES_POINTS } from '../../shared/api/telemetry.js';
import { ErrorCodes } from '../../shared/errors.js';
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import { captureSample, capturesBatch, metricsBatch, serviceInterval } from '../helpers/telemetry-batches.js';
import { FakeClock } from '../helpers/fake-clock.js';

const NOW = Date.parse('2024-05-01T13:00:00.000Z');
const RETENTION_DAYS = 30;
const silent = pino({ level: 'silent' });

/** Keeps appended records in memory and answers reads like the archive: kind, device, service, time range. */
class MemoryArchive implements Pick<TelemetryArchive, 'append' | 'read'> {
  readonly batches = new Map<string, ArchiveRecord[]>();
  readonly queries: ReadQuery[] = [];
  fail: Error | undefined;

  async append(batchId: string, records: readonly ArchiveRecord[]): Promise<AppendResult> {
    if (this.fail) throw this.fail;
    if (this.batches.has(batchId)) return 'duplicate';
    this.batches.set(batchId, [...records]);
    return 'stored';
  }

  read(query: ReadQuery): AsyncIterable<StoredRecord> {
    this.queries.push(query);
    const all = [...this.batches].flatMap(([batch, records]) => records.map((r) => ({ ...r, batch })));
    const wanted = all.filter(
      (r) =>
        r.kind === query.kind &&
        (query.device === undefined || r.device === query.device) &&
        (query.service === undefined || (r.kind === 'captures' && r.service === query.service)) &&
        r.ts >= query.since.getTime() &&
        (query.until === undefined || r.ts < query.until.getTime()),
    );
    return (async function* () {
      yield* wanted;
    })();
  }
}

function setup() {
  const archive = new MemoryArchive();
  // gw-3 runs only `wine`: what it says about iris is not its to say.
  const services: Record<string, string[]> = { 'gw-1': ['iris', 'other'], 'gw-2': ['iris', 'other', 'rose'], 'gw-3': ['wine'] };
  const ingest = new TelemetryIngest({ archive, servicesOf: (device) => new Set(services[device] ?? []), clock: new FakeClock(NOW), retentionDays: RETENTION_DAYS, logger: silent });
  return { archive, ingest };
}

/** A histogram with `counts` in the given buckets (index → count). */
function latency(buckets: Record<number, number>, sumMs: number) {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  for (const [i, n] of Object.entries(buckets)) counts[Number(i)] = n;
  return { boundsMs: [...LATENCY_BOUNDS_MS], counts, sumMs };
}

const at = (iso: string) => ({ from: new Date(Date.parse(iso) - 10_000).toISOString(), to: iso });

test('a metrics batch is one record at its interval end, stored under DEVICE/ID', async (t) => {
  const { archive, ingest } = setup();
  const batch = metricsBatch({ id: 'm-7' });
  t.is(await ingest.accept('gw-1', batch), 'stored');
  t.deepEqual(archive.batches.get('gw-1/m-7'), [{ kind: 'metrics', device: 'gw-1', ts: Date.parse(batch.to), data: batch }]);
});

test('the same batch id from two devices is two batches; from one device twice, one', async (t) => {
  const { archive, ingest } = setup();
  t.is(await ingest.accept('gw-1', metricsBatch({ id: 'same' })), 'stored');
  t.is(await ingest.accept('gw-2', metricsBatch({ id: 'same' })), 'stored');
  t.is(await ingest.accept('gw-1', metricsBatch({ id: 'same' })), 'duplicate');
  t.deepEqual([...archive.batches.keys()], ['gw-1/same', 'gw-2/same']);
  t.is(ingest.fleet.services().get('iris')?.requests, 4, 'the duplicate is not counted');
});

test('a captures batch is one record per sample, filed under its first model; a service without a model under none@0', async (t) => {
  const { archive, ingest } = setup();
  const two = captureSample({ ts: '2024-05-01T12:00:02.000Z', models: [{ name: 'iris', version: 3 }, { name: 'pre', version: 1 }] });
  const none = captureSample({ ts: '2024-05-01T12:00:03.000Z', models: [] });
  await ingest.accept('gw-1', capturesBatch({ id: 'c-9', samples: [two, none] }));
  t.deepEqual(archive.batches.get('gw-1/c-9'), [
    { kind: 'captures', device: 'gw-1', service: 'iris', model: 'iris', version: 3, ts: Date.parse(two.ts), data: two },
    { kind: 'captures', device: 'gw-1', service: 'iris', model: 'none', version: 0, ts: Date.parse(none.ts), data: none },
  ]);
});

test("a device's figures and captures of services it does not run are left out; the rest is stored", async (t) => {
  const { archive, ingest } = setup();
  const batch = metricsBatch({ id: 'm-1', services: { iris: serviceInterval({ requests: 9 }), wine: serviceInterval({ requests: 2 }) }, containers: [] });
  t.is(await ingest.accept('gw-3', batch), 'stored');
  const [stored] = archive.batches.get('gw-3/m-1')!;
  t.deepEqual(Object.keys((stored!.data as typeof batch).services), ['wine']);
  t.deepEqual([...ingest.fleet.services().keys()], ['wine'], 'iris totals untouched');
  t.is(await ingest.accept('gw-3', capturesBatch({ id: 'c-1' })), 'stored', 'acknowledged, so the device does not send it again');
  t.false(archive.batches.has('gw-3/c-1'), 'but nothing of it is stored: every sample was for iris');
});

test('batches the schema allows but the hub cannot use are refused with MESSAGE_INVALID and not stored', async (t) => {
  const { archive, ingest } = setup();
  const refused = [
    metricsBatch({ services: { iris: serviceInterval({ latencyMs: { boundsMs: [1, 2], counts: [0, 0, 0], sumMs: 0 } }) } }),
    metricsBatch({ services: { iris: serviceInterval({ latencyMs: { boundsMs: [...LATENCY_BOUNDS_MS], counts: [1, 2], sumMs: 0 } }) } }),
    metricsBatch({ to: '2024-13-45T00:00:00.000Z' }),
  ];
  for (const batch of refused) await t.throwsAsync(ingest.accept('gw-1', batch), { code: ErrorCodes.MESSAGE_INVALID });
  t.is(archive.batches.size, 0);
  t.regex(batchProblem(refused[0]!)!, /bounds \[1, 2\] are not the fleet's/);
  t.regex(batchProblem(refused[1]!)!, /2 counts for 11 bounds/);
  // A device clock stepped back makes `from` later than `to`: the counts are real, so it is stored.
  t.is(batchProblem(metricsBatch({ from: '2024-05-01T12:00:10.000Z', to: '2024-05-01T12:00:00.000Z' })), undefined);
});

test('a device clock that is years behind or days ahead: filed at receive time, the device times kept in the record', async (t) => {
  const { archive, ingest } = setup();
  const yearsBehind = '2019-03-01T08:00:00.000Z';
  const daysAhead = '2024-05-04T09:00:00.000Z';
  t.is(await ingest.accept('gw-1', metricsBatch({ id: 'm-behind', from: '2019-03-01T07:59:50.000Z', to: yearsBehind })), 'stored');
  t.is(await ingest.accept('gw-1', metricsBatch({ id: 'm-ahead', from: daysAhead, to: daysAhead })), 'stored', 'no longer refused (and so lost)');
  t.is(await ingest.accept('gw-1', capturesBatch({ id: 'c-behind', samples: [captureSample({ ts: yearsBehind }), captureSample({ ts: '2024-05-01T12:59:00.000Z' })] })), 'stored');
  const [behind] = archive.batches.get('gw-1/m-behind')!;
  t.is(behind!.ts, NOW, 'filed today, where retention keeps it');
  t.like(behind!.data, { from: '2019-03-01T07:59:50.000Z', to: yearsBehind });
  const [ahead] = archive.batches.get('gw-1/m-ahead')!;
  t.is(ahead!.ts, NOW);
  t.like(ahead!.data, { to: daysAhead });
  const [sampleBehind, sampleRight] = archive.batches.get('gw-1/c-behind')!;
  t.is(sampleBehind!.ts, NOW);
  t.like(sampleBehind!.data, { ts: yearsBehind });
  t.is(sampleRight!.ts, Date.parse('2024-05-01T12:59:00.000Z'), 'a plausible time is kept');
});

test('a batch sent late by a device that was cut off keeps its own day while retention keeps that day', async (t) => {
  const { archive, ingest } = setup();
  const oldestKept = '2024-04-02T00:00:00.000Z'; // 30 days, today included
  await ingest.accept('gw-1', metricsBatch({ id: 'm-late', from: '2024-04-28T10:00:00.000Z', to: '2024-04-28T10:00:10.000Z' }));
  await ingest.accept('gw-1', metricsBatch({ id: 'm-oldest', from: oldestKept, to: oldestKept }));
  await ingest.accept('gw-1', metricsBatch({ id: 'm-expired', to: '2024-04-01T23:59:59.999Z' }));
  await ingest.accept('gw-1', metricsBatch({ id: 'm-a-day-ahead', from: '2024-05-02T12:59:59.000Z', to: '2024-05-02T12:59:59.000Z' }));
  t.is(archive.batches.get('gw-1/m-late')![0]!.ts, Date.parse('2024-04-28T10:00:10.000Z'));
  t.is(archive.batches.get('gw-1/m-oldest')![0]!.ts, Date.parse(oldestKept));
  t.is(archive.batches.get('gw-1/m-expired')![0]!.ts, NOW, 'a day retention no longer keeps: filed at receive time');
  t.is(archive.batches.get('gw-1/m-a-day-ahead')![0]!.ts, Date.parse('2024-05-02T12:59:59.000Z'), 'up to a day ahead is a clock a little fast');
});

test("names the archive cannot store are refused as invalid; a write failure is passed on so the batch is not acknowledged", async (t) => {
  const { archive, ingest } = setup();
  archive.fail = new TelemetryArchiveError(TelemetryArchiveCodes.NAME_INVALID, 'model name "a/b" cannot be stored');
  await t.throwsAsync(ingest.accept('gw-1', capturesBatch()), { code: ErrorCodes.MESSAGE_INVALID, message: /a\/b/ });
  archive.fail = Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
  await t.throwsAsync(ingest.accept('gw-1', metricsBatch()), { message: /EIO/ });
  t.is(ingest.fleet.services().size, 0, 'nothing counted for a batch that was not stored');
});

test('service report: exact sums per device and for the fleet, percentiles from the merged histograms', async (t) => {
  const { archive, ingest } = setup();
  const iris = (requests: number, ok: number, err5: number, rejected: number, buckets: Record<number, number>, sumMs: number) =>
    serviceInterval({ requests, responses: { '2xx': ok, '3xx': 0, '4xx': rejected, '5xx': err5 }, rejected, queueTimeouts: err5 > 0 ? 1 : 0, latencyMs: latency(buckets, sumMs) });
  // gw-1: 100 answers at 0-5 ms; gw-2: 100 at 50-100 ms, in two batches. Merged: p50 at the top of bucket 0, p95 in bucket 4.
  await ingest.accept('gw-1', metricsBatch({ id: 'a', ...at('2024-05-01T12:10:00.000Z'), services: { iris: iris(102, 100, 2, 0, { 0: 100 }, 300), other: serviceInterval({ requests: 5 }) } }));
  await ingest.accept('gw-2', metricsBatch({ id: 'b', ...at('2024-05-01T12:20:00.000Z'), services: { iris: iris(60, 50, 0, 10, { 4: 50 }, 3750) } }));
  await ingest.accept('gw-2', metricsBatch({ id: 'c', ...at('2024-05-01T12:30:00.000Z'), services: { iris: iris(50, 50, 0, 0, { 4: 50 }, 3750) } }));
  // Outside the window: not counted.
  await ingest.accept('gw-2', metricsBatch({ id: 'd', ...at('2024-05-01T11:00:00.000Z'), services: { iris: iris(1000, 1000, 0, 0, { 10: 1000 }, 1) } }));

  const since = Date.parse('2024-05-01T12:00:00.000Z');
  const report = await serviceReport(archive, { service: 'iris', since, until: NOW });
  t.like(report, { service: 'iris', since: '2024-05-01T12:00:00.000Z', until: '2024-05-01T13:00:00.000Z', requests: 212, errors: 2, rejected: 10, queueTimeouts: 1, atLeast: [] });
  t.is(report.requestsPerSecond, 212 / 3600);
  t.is(report.errorRate, 2 / 212);
  t.is(report.p50, 5, 'rank 100 of 200 is the last answer of the first bucket (0-5 ms)');
  t.is(report.p95, 50 + (50 * (190 - 100)) / 100, 'linear within bucket (50, 100]');
  t.is(report.p99, 50 + (50 * (198 - 100)) / 100);
  t.deepEqual(report.devices.map((d) => [d.device, d.requests, d.errors, d.rejected, d.p50]), [
    ['gw-1', 102, 2, 0, 2.5],
    ['gw-2', 110, 0, 10, 75],
  ]);
  t.deepEqual(archive.queries.at(-1), { kind: 'metrics', device: undefined, since: new Date(since), until: new Date(NOW) });

  const one = await serviceReport(archive, { service: 'iris', device: 'gw-2', since, until: NOW });
  t.is(archive.queries.at(-1)?.device, 'gw-2', 'the device filter goes to the archive, which opens only its files');
  t.like(one, { requests: 110 });
});

test('service report: no requests means null rates and percentiles; the open bucket is flagged', async (t) => {
  const { archive, ingest } = setup();
  const since = Date.parse('2024-05-01T12:00:00.000Z');
  t.like(await serviceReport(archive, { service: 'iris', since, until: NOW }), { requests: 0, requestsPerSecond: 0, errorRate: null, p50: null, p95: null, p99: null, devices: [] });
  const slow = serviceInterval({ requests: 20, responses: { '2xx': 20, '3xx': 0, '4xx': 0, '5xx': 0 }, latencyMs: latency({ 0: 19, 11: 1 }, 60_000) });
  await ingest.accept('gw-1', metricsBatch({ ...at('2024-05-01T12:10:00.000Z'), services: { iris: slow } }));
  const report = await serviceReport(archive, { service: 'iris', since, until: NOW });
  t.deepEqual(report.atLeast, ['p99'], 'p99 lies above 10 s: only known to be more');
  t.is(report.p99, 10_000);
  t.true(report.p95! <= 5);
});

test('device report: latest batch by time whatever the read order, and a series bounded to MAX_SERIES_POINTS', async (t) => {
  const { archive, ingest } = setup();
  const since = NOW - 3600_000;
  // One sample a minute for an hour, stored newest first, then twice as many as the series holds.
  for (let i = 59; i >= 0; i--) {
    const to = new Date(since + i * 60_000 + 1000).toISOString();
    await ingest.accept('gw-1', metricsBatch({ id: `m-${i}`, ...at(to), device: { ...metricsBatch().device, cpuPercent: i } }));
  }
  const report = await deviceReport(archive, { device: 'gw-1', invalidMessages: 3, since, until: NOW });
  t.is(report.samples, 60);
  t.is(report.latest?.device.cpuPercent, 59);
  t.is(report.series.length, 60);
  t.deepEqual(report.series.map((p) => p.cpuPercent), [...Array(60).keys()], 'oldest first');
  t.like(report.series[0], { memoryUsedBytes: 512, memoryTotalBytes: 1024, diskUsedBytes: 10, diskTotalBytes: 100, temperatureC: null });
  t.is(report.invalidMessages, 3);

  for (let i = 0; i < MAX_SERIES_POINTS * 2; i++) await ingest.accept('gw-2', metricsBatch({ id: `n-${i}`, ...at(new Date(since + i * 15_000 + 500).toISOString()) }));
  const dense = await deviceReport(archive, { device: 'gw-2', invalidMessages: 0, since, until: NOW });
  t.is(dense.samples, MAX_SERIES_POINTS * 2);
  t.is(dense.series.length, MAX_SERIES_POINTS);

  t.like(await deviceReport(archive, { device: 'gw-3', invalidMessages: 0, since, until: NOW }), { samples: 0, latest: null, series: [] });
});

test('capture export: one line per sample with its device and request id, filtered by model name and version', async (t) => {
  const { archive, ingest } = setup();
  await ingest.accept('gw-1', capturesBatch({ id: 'a', samples: [captureSample({ models: [{ name: 'iris', version: 1 }], requestId: 'req-1' }), captureSample({ models: [{ name: 'iris', version: 2 }] })] }));
  await ingest.accept('gw-2', capturesBatch({ id: 'a', samples: [captureSample({ models: [{ name: 'rose', version: 1 }] })] }));
  const since = NOW - 86_400_000;
  const lines = async (filter: { model?: string; device?: string }) => {
    const out: Array<Record<string, unknown>> = [];
    for await (const line of captureLines(archive, { service: 'iris', since, until: NOW, ...filter })) {
      t.true(line.endsWith('\n'));
      out.push(JSON.parse(line) as Record<string, unknown>);
    }
    return out;
  };
  const all = await lines({});
  t.is(all.length, 3);
  t.like(all[0], { ...captureSample(), models: [{ name: 'iris', version: 1 }], requestId: 'req-1', device: 'gw-1' });
  t.is((await lines({ model: 'iris' })).length, 2);
  t.deepEqual((await lines({ model: 'iris:2' })).map((s) => s.models), [[{ name: 'iris', version: 2 }]]);
  t.deepEqual((await lines({ device: 'gw-2' })).map((s) => s.device), ['gw-2']);
});

test('running totals for /metrics: per service since start, and the latest outbox drops of each device', async (t) => {
  const { ingest } = setup();
  const s = (requests: number) => serviceInterval({ requests, responses: { '2xx': requests - 1, '3xx': 0, '4xx': 1, '5xx': 0 }, rejected: 1, latencyMs: latency({ 1: requests - 1 }, 7 * (requests - 1)) });
  const outbox = (metrics: number) => ({ dropped: { metrics, capture: 1 }, queued: { metrics: 0, capture: 0 } });
  await ingest.accept('gw-1', metricsBatch({ id: '1', ...at('2024-05-01T12:00:20.000Z'), services: { iris: s(10) }, outbox: outbox(5) }));
  // Older than the one before (a redelivery after a reconnect): its outbox figure is stale.
  await ingest.accept('gw-1', metricsBatch({ id: '0', ...at('2024-05-01T12:00:10.000Z'), services: { iris: s(4) }, outbox: outbox(2) }));
  await ingest.accept('gw-2', metricsBatch({ id: '1', ...at('2024-05-01T12:00:10.000Z'), services: { iris: s(6), rose: s(2) }, outbox: outbox(7) }));
  const iris = ingest.fleet.services().get('iris')!;
  t.like(iris, { requests: 20, responses: { '2xx': 17, '3xx': 0, '4xx': 3, '5xx': 0 }, rejected: 3, queueTimeouts: 0 });
  t.is(iris.latencyMs.counts[1], 17);
  t.is(iris.latencyMs.sumMs, 7 * 17);
  t.deepEqual([...ingest.fleet.services().keys()], ['iris', 'rose']);
  t.deepEqual(ingest.fleet.outboxDropped(), { metrics: 12, capture: 2 });
});

test('service report: each device its latest ready replicas whatever the read order, the fleet their sum; scaling decisions summed; older batches count none', async (t) => {
  const { archive, ingest } = setup();
  const scaled = (replicas: number, up: number, down: number, held: number) => serviceInterval({ replicas, scaling: { up, down, held } });
  // gw-1 scaled 1 → 3 then back to 2; its newest batch is stored before an older one (a redelivery).
  await ingest.accept('gw-1', metricsBatch({ id: 'a', ...at('2024-05-01T12:10:00.000Z'), services: { iris: scaled(2, 2, 0, 0) } }));
  await ingest.accept('gw-1', metricsBatch({ id: 'c', ...at('2024-05-01T12:30:00.000Z'), services: { iris: scaled(2, 0, 1, 1) } }));
  await ingest.accept('gw-1', metricsBatch({ id: 'b', ...at('2024-05-01T12:20:00.000Z'), services: { iris: scaled(3, 1, 0, 0) } }));
  // gw-2 runs an agent older than replicas: its batches carry neither field.
  await ingest.accept('gw-2', metricsBatch({ id: 'a', ...at('2024-05-01T12:10:00.000Z'), services: { iris: serviceInterval({ requests: 3 }) } }));
  const since = Date.parse('2024-05-01T12:00:00.000Z');
  const report = await serviceReport(archive, { service: 'iris', since, until: NOW });
  t.deepEqual(
    report.devices.map((d) => [d.device, d.replicas, d.scaling]),
    [
      ['gw-1', 2, { up: 3, down: 1, held: 1 }],
      ['gw-2', null, { up: 0, down: 0, held: 0 }],
    ],
  );
  t.like(report, { replicas: 2, scaling: { up: 3, down: 1, held: 1 } });

  // A newer batch without the count (the agent downgraded) leaves the latest count there is.
  await ingest.accept('gw-1', metricsBatch({ id: 'd', ...at('2024-05-01T12:40:00.000Z'), services: { iris: serviceInterval() } }));
  await ingest.accept('gw-2', metricsBatch({ id: 'b', ...at('2024-05-01T12:40:00.000Z'), services: { iris: scaled(4, 0, 0, 0) } }));
  t.like(await serviceReport(archive, { service: 'iris', since, until: NOW }), { replicas: 6 });
  t.like(await serviceReport(archive, { service: 'iris', since: Date.parse('2024-05-01T12:35:00.000Z'), until: NOW }), { replicas: 4, devices: [{ device: 'gw-1', replicas: null }, { device: 'gw-2', replicas: 4 }] });
  t.like(await serviceReport(archive, { service: 'iris', since: NOW - 60_000, until: NOW }), { replicas: null, scaling: { up: 0, down: 0, held: 0 }, devices: [] });
});

test('running totals for /metrics add up the scaling decisions per service; batches without them add none', async (t) => {
  const { ingest } = setup();
  await ingest.accept('gw-1', metricsBatch({ id: '1', services: { iris: serviceInterval({ replicas: 3, scaling: { up: 2, down: 0, held: 1 } }) } }));
  await ingest.accept('gw-2', metricsBatch({ id: '1', services: { iris: serviceInterval({ scaling: { up: 1, down: 1, held: 0 } }), rose: serviceInterval() } }));
  t.deepEqual(ingest.fleet.services().get('iris')?.scaling, { up: 3, down: 1, held: 1 });
  t.deepEqual(ingest.fleet.services().get('rose')?.scaling, { up: 0, down: 0, held: 0 });
});
