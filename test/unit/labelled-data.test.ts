/**
 * Feedback ingest and the labelled-data join (hub/telemetry/ingest.ts, hub/datasets/labelled-data.ts)
 * on a real archive in a temp dir: labels join their captured request by (device, request id),
 * inline examples are rows without an answer, the latest label wins, and labels are counted by the
 * hub's time of arrival.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { ArchiveLabelledData, type LabelledRow } from '../../hub/datasets/labelled-data.js';
import { TelemetryArchive } from '../../hub/telemetry/archive.js';
import { TelemetryIngest } from '../../hub/telemetry/ingest.js';
import type { Clock } from '../../shared/clock.js';
import type { FeedbackBatch, FeedbackItem } from '../../shared/protocol.js';
import { archiveDir, archiveLogger, ARCHIVE_NOW } from '../helpers/telemetry-archive.js';
import { captureSample, capturesBatch } from '../helpers/telemetry-batches.js';

/** Hub time the test moves by hand; real timers, so the archive's fsync rounds happen. */
function movableClock(): Clock & { ms: number } {
  return { ms: ARCHIVE_NOW, now() { return this.ms; }, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
}

async function setUp(t: ExecutionContext, services: Record<string, string[]> = { 'dev-1': ['iris'], 'dev-2': ['iris'] }) {
  const dir = await archiveDir(t);
  const clock = movableClock();
  const archive = await TelemetryArchive.open(dir, { clock, logger: archiveLogger, fsyncEveryMs: 5 });
  t.teardown(() => archive.close());
  const ingest = new TelemetryIngest({ archive, servicesOf: (d) => new Set(services[d] ?? []), clock, retentionDays: 30, logger: archiveLogger });
  return { dir, clock, archive, ingest, data: new ArchiveLabelledData(archive) };
}

const label = (requestId: string, value: unknown, overrides: Partial<FeedbackItem> = {}): FeedbackItem => ({
  ts: '2024-05-02T10:00:00.000Z',
  requestId,
  service: 'iris',
  revision: 1,
  models: [{ name: 'iris', version: 1 }],
  label: value,
  ...overrides,
});

const feedback = (id: string, items: FeedbackItem[]): FeedbackBatch => ({ v: 1, kind: 'feedback', id, items });

async function rows(iterable: AsyncIterable<LabelledRow>): Promise<LabelledRow[]> {
  const out: LabelledRow[] = [];
  for await (const row of iterable) out.push(row);
  return out;
}

test('a label joins the captured request of the same device and request id; the other device’s same id stays unlabelled', async (t) => {
  const { ingest, data, dir } = await setUp(t);
  await ingest.accept('dev-1', capturesBatch({ id: 'c-1', samples: [captureSample({ requestId: 'r-1', ts: '2024-05-01T12:00:01.000Z' })] }));
  await ingest.accept('dev-2', capturesBatch({ id: 'c-1', samples: [captureSample({ requestId: 'r-1', ts: '2024-05-01T12:00:02.000Z', request: { json: { x: [9] }, bytes: 8, truncated: false } })] }));
  t.is(await ingest.accept('dev-1', feedback('f-1', [label('r-1', 'setosa')])), 'stored');

  t.deepEqual(await readdir(join(dir, 'feedback', '2024-05-03', 'iris')), ['dev-1.jsonl']);
  const all = await rows(data.rows({ service: 'iris' }));
  t.deepEqual(all, [
    { requestId: 'r-1', time: '2024-05-01T12:00:01.000Z', device: 'dev-1', model: 'iris:1', revision: 1, input: { x: [1, 2] }, output: { y: 1 }, label: 'setosa' },
    { requestId: 'r-1', time: '2024-05-01T12:00:02.000Z', device: 'dev-2', model: 'iris:1', revision: 1, input: { x: [9] }, output: { y: 1 }, label: null },
  ]);
  t.deepEqual((await rows(data.rows({ service: 'iris', labelled: true }))).map((r) => r.device), ['dev-1']);
  t.deepEqual((await rows(data.rows({ service: 'iris', labelled: false }))).map((r) => r.device), ['dev-2']);
  t.deepEqual((await rows(data.rows({ service: 'iris', devices: ['dev-2'] }))).map((r) => r.device), ['dev-2']);
});

test('an inline example is a row with its own input, no answer, and the model that served the service', async (t) => {
  const { ingest, data } = await setUp(t);
  await ingest.accept('dev-1', feedback('f-1', [label('g-1', 7, { input: { x: [3, 4] }, revision: 2, models: [{ name: 'iris', version: 2 }] })]));
  t.deepEqual(await rows(data.rows({ service: 'iris', labelled: true })), [
    { requestId: 'g-1', time: '2024-05-02T10:00:00.000Z', device: 'dev-1', model: 'iris:2', revision: 2, input: { x: [3, 4] }, output: null, label: 7 },
  ]);
  t.deepEqual(await rows(data.rows({ service: 'iris', revision: 1 })), []);
  t.is((await rows(data.rows({ service: 'iris', revision: 2 }))).length, 1);
});

test('the latest label of a request wins, whatever order the batches arrive in', async (t) => {
  const { ingest, data } = await setUp(t);
  await ingest.accept('dev-1', capturesBatch({ samples: [captureSample({ requestId: 'r-1' })] }));
  await ingest.accept('dev-1', feedback('f-2', [label('r-1', 'second', { ts: '2024-05-02T11:00:00.000Z' })]));
  await ingest.accept('dev-1', feedback('f-1', [label('r-1', 'first', { ts: '2024-05-02T10:00:00.000Z' })]));
  t.deepEqual((await rows(data.rows({ service: 'iris' }))).map((r) => r.label), ['second']);
  await ingest.accept('dev-1', feedback('f-3', [label('r-1', 'third', { ts: '2024-05-02T12:00:00.000Z' })]));
  t.deepEqual((await rows(data.rows({ service: 'iris' }))).map((r) => r.label), ['third']);
});

test('since and until select captures by their filing time, inline examples by their arrival; since inclusive, until exclusive', async (t) => {
  const { ingest, data, clock } = await setUp(t);
  const at = ['2024-05-01T10:00:00.000Z', '2024-05-01T11:00:00.000Z', '2024-05-02T09:00:00.000Z'];
  await ingest.accept('dev-1', capturesBatch({ samples: at.map((ts, i) => captureSample({ ts, requestId: `r-${i}` })) }));
  await ingest.accept('dev-1', feedback('f-1', [label('r-0', 'a'), label('r-2', 'c')]));
  const hubNow = clock.ms;
  clock.ms = Date.parse('2024-05-01T11:30:00.000Z');
  await ingest.accept('dev-1', feedback('f-2', [label('g-1', 'i', { ts: '2024-05-01T11:29:00.000Z', input: { x: [0] } })]));
  clock.ms = hubNow;
  // Given at the gateway on the 1st, it reached the hub on the 3rd.
  await ingest.accept('dev-1', feedback('f-3', [label('g-2', 'j', { ts: '2024-05-01T11:29:00.000Z', input: { x: [1] } })]));
  const ids = async (since?: string, until?: string) =>
    (await rows(data.rows({ service: 'iris', ...(since && { since }), ...(until && { until }) }))).map((r) => r.requestId).sort();
  t.deepEqual(await ids('2024-05-01T11:00:00.000Z'), ['g-1', 'g-2', 'r-1', 'r-2']);
  t.deepEqual(await ids(undefined, '2024-05-01T11:00:00.000Z'), ['r-0']);
  t.deepEqual(await ids('2024-05-01T11:00:00.000Z', '2024-05-02T00:00:00.000Z'), ['g-1', 'r-1']);
  t.deepEqual(await ids('2024-05-03T00:00:00.000Z'), ['g-2']);
});

test('feedback is kept only for the device’s own services, stored once per batch id, and counted by hub arrival time', async (t) => {
  const { ingest, data, clock } = await setUp(t, { 'dev-1': ['iris'] });
  await ingest.accept('dev-1', capturesBatch({ samples: [captureSample({ requestId: 'r-1' })] }));
  const batch = feedback('f-1', [label('r-1', 'a'), label('x-1', 'b', { service: 'other', input: { x: [1] } })]);
  t.is(await ingest.accept('dev-1', batch), 'stored');
  t.is(await ingest.accept('dev-1', batch), 'duplicate');
  // A device that runs no service at all adds nothing.
  t.is(await ingest.accept('dev-9', feedback('f-1', [label('r-1', 'z')])), 'stored');
  t.deepEqual((await rows(data.rows({ service: 'iris' }))).map((r) => [r.device, r.label]), [['dev-1', 'a']]);
  t.deepEqual(await rows(data.rows({ service: 'other' })), []);

  const first = new Date(clock.ms).toISOString();
  t.is(await data.countLabels('iris', first), 1);
  clock.ms += 60_000;
  const later = new Date(clock.ms).toISOString();
  t.is(await data.countLabels('iris', later), 0);
  await ingest.accept('dev-1', feedback('f-2', [label('r-1', 'b'), label('g-2', 3, { input: { x: [2] } })]));
  t.is(await data.countLabels('iris', later), 2);
  t.is(await data.countLabels('iris', first), 3);
});

test('feedback days are compacted and expired with the rest of the archive, and read the same after compaction', async (t) => {
  const { ingest, data, archive, dir, clock } = await setUp(t);
  await ingest.accept('dev-1', capturesBatch({ samples: [captureSample({ requestId: 'r-1' })] }));
  await ingest.accept('dev-1', feedback('f-1', [label('r-1', 'a'), label('g-1', 'b', { input: { x: [1] } })]));
  const before = await rows(data.rows({ service: 'iris' }));
  t.like(await archive.compact(new Date(clock.ms + 86_400_000)), { files: 2 });
  t.deepEqual((await readdir(join(dir, 'feedback', '2024-05-03', 'iris'))).sort(), ['dev-1~1.jsonl.gz']);
  t.deepEqual(await rows(data.rows({ service: 'iris' })), before);
  clock.ms += 40 * 86_400_000;
  const { removed } = await archive.expire(30);
  t.true(removed.includes('feedback/2024-05-03'));
  t.deepEqual(await rows(data.rows({ service: 'iris' })), []);
});

test('a capture from a device whose clock is far off is filed, and selected, by the hub’s receive time', async (t) => {
  const { ingest, data } = await setUp(t);
  await ingest.accept('dev-1', capturesBatch({ samples: [captureSample({ requestId: 'r-old', ts: '2001-01-01T00:00:00.000Z' })] }));
  await ingest.accept('dev-1', feedback('f-1', [label('r-old', 'a')]));
  t.deepEqual(await rows(data.rows({ service: 'iris', since: '2024-05-03T00:00:00.000Z', labelled: true })), [
    { requestId: 'r-old', time: '2001-01-01T00:00:00.000Z', device: 'dev-1', model: 'iris:1', revision: 1, input: { x: [1, 2] }, output: { y: 1 }, label: 'a' },
  ]);
  t.deepEqual(await rows(data.rows({ service: 'iris', until: '2024-05-03T00:00:00.000Z' })), []);
});

test('a captured request whose body was withheld is no row, labelled or not; its label still counts as arrived', async (t) => {
  const { ingest, data, clock, archive } = await setUp(t);
  const since = new Date(clock.ms).toISOString();
  await ingest.accept('dev-1', capturesBatch({ samples: [
    captureSample({ requestId: 'r-big', request: { bytes: 1_000_000, truncated: true } }),
    captureSample({ requestId: 'r-ok' }),
  ] }));
  await ingest.accept('dev-1', feedback('f-1', [label('r-big', 'a'), label('r-ok', 'b')]));
  t.deepEqual((await rows(data.rows({ service: 'iris' }))).map((r) => [r.requestId, r.label]), [['r-ok', 'b']]);
  t.deepEqual(await rows(data.rows({ service: 'iris', labelled: false })), []);
  t.is(await data.countLabels('iris', since), 2);
  const logged: Array<{ msg: string; rows: number }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string; rows: number }) });
  await rows(new ArchiveLabelledData(archive, logger).rows({ service: 'iris' }));
  t.like(logged, [{ msg: 'labelled data: rows without an input left out', rows: 1 }]);
});

test('an inline example never labels a captured request of the same id, nor is replaced by a label for it', async (t) => {
  const { ingest, data } = await setUp(t);
  await ingest.accept('dev-1', capturesBatch({ samples: [captureSample({ requestId: 'r-1' })] }));
  await ingest.accept('dev-1', feedback('f-1', [label('r-1', 'inline', { ts: '2024-05-02T11:00:00.000Z', input: { x: [5] } }), label('r-1', 'by-id')]));
  t.deepEqual((await rows(data.rows({ service: 'iris' }))).map((r) => [r.requestId, r.input, r.output, r.label]), [
    ['r-1', { x: [1, 2] }, { y: 1 }, 'by-id'],
    ['r-1', { x: [5] }, null, 'inline'],
  ]);
});
