/**
 * The hub's telemetry archive (hub/telemetry/) on the real filesystem, in a temp dir per test:
 * layout, reads by device/service/time, at-most-once batches across reopen and a crash mid-write,
 * damaged lines, unsafe names, and retention.
 */
import { appendFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { TelemetryArchive } from '../../hub/telemetry/archive.js';
import { TelemetryArchiveCodes, TelemetryArchiveError } from '../../hub/telemetry/errors.js';
import type { ArchiveRecord, CaptureRecord } from '../../hub/telemetry/records.js';
import { applyRetention, expiredDays } from '../../hub/telemetry/retention.js';
import { archiveClock, archiveDir, archiveLogger, ARCHIVE_NOW, collect, openArchive } from '../helpers/telemetry-archive.js';

const at = (iso: string): number => Date.parse(iso);

const metrics = (device: string, iso: string, requests = 1): ArchiveRecord => ({ kind: 'metrics', device, ts: at(iso), data: { requests } });
const capture = (device: string, service: string, version: number, iso: string): CaptureRecord => ({
  kind: 'captures',
  device,
  service,
  model: 'iris',
  version,
  ts: at(iso),
  data: { input: [1, 2], output: 'setosa', status: 200, latencyMs: 4 },
});

test('records land in daily files per device and per service/model version, and read back by device, service and time range', async (t) => {
  const dir = await archiveDir(t);
  const archive = await openArchive(t, dir);
  t.is(await archive.append('b1', [metrics('dev-1', '2024-05-01T10:00:00Z', 1), metrics('dev-2', '2024-05-01T11:00:00Z', 2), capture('dev-1', 'iris', 1, '2024-05-01T10:00:01Z')]), 'stored');
  t.is(await archive.append('b2', [metrics('dev-1', '2024-05-02T00:00:00Z', 3), capture('dev-2', 'iris', 2, '2024-05-02T09:00:00Z'), capture('dev-1', 'other', 1, '2024-05-02T09:30:00Z')]), 'stored');

  t.deepEqual((await readdir(join(dir, 'metrics', '2024-05-01'))).sort(), ['dev-1.jsonl', 'dev-2.jsonl']);
  t.deepEqual(await readdir(join(dir, 'captures', '2024-05-02', 'iris')), ['iris@2.jsonl']);
  const line = JSON.parse((await readFile(join(dir, 'metrics', '2024-05-02', 'dev-1.jsonl'), 'utf8')).trim()) as unknown;
  t.deepEqual(line, { kind: 'metrics', device: 'dev-1', ts: at('2024-05-02T00:00:00Z'), data: { requests: 3 }, batch: 'b2' });

  const since = new Date('2024-05-01T00:00:00Z');
  t.deepEqual((await collect(archive.read({ kind: 'metrics', device: 'dev-1', since }))).map((r) => r.data), [{ requests: 1 }, { requests: 3 }]);
  t.deepEqual((await collect(archive.read({ kind: 'metrics', since }))).map((r) => r.device), ['dev-1', 'dev-2', 'dev-1']);
  // since is inclusive, until exclusive: midnight of 05-02 belongs to the second day only.
  const firstDay = await collect(archive.read({ kind: 'metrics', device: 'dev-1', since, until: new Date('2024-05-02T00:00:00Z') }));
  t.deepEqual(firstDay.map((r) => r.data), [{ requests: 1 }]);
  const fromMidnight = await collect(archive.read({ kind: 'metrics', since: new Date('2024-05-02T00:00:00Z') }));
  t.deepEqual(fromMidnight.map((r) => r.data), [{ requests: 3 }]);

  const iris = await collect(archive.read({ kind: 'captures', service: 'iris', since }));
  t.deepEqual(iris.map((r) => (r.kind === 'captures' ? `${r.device} ${r.model}@${r.version}` : '')), ['dev-1 iris@1', 'dev-2 iris@2']);
  t.deepEqual((await collect(archive.read({ kind: 'captures', device: 'dev-1', since }))).map((r) => r.kind === 'captures' && r.service), ['iris', 'other']);
  t.deepEqual(await collect(archive.read({ kind: 'captures', service: 'iris', since: new Date('2024-06-01T00:00:00Z') })), []);
  t.like(archive.stats(), { stored: 2, duplicates: 0, skippedLines: 0 });
});

test('a batch id is stored at most once: while in flight, once written, and after reopening', async (t) => {
  const dir = await archiveDir(t);
  const first = await TelemetryArchive.open(dir, { clock: archiveClock, logger: archiveLogger, fsyncEveryMs: 5 });
  const batch = [metrics('dev-1', '2024-05-03T10:00:00Z')];
  // The redelivery arrives before the first copy is even written.
  t.deepEqual(await Promise.all([first.append('b1', batch), first.append('b1', batch)]), ['stored', 'duplicate']);
  t.is(await first.append('b1', batch), 'duplicate');
  t.is(await first.append('b2', []), 'stored', 'an empty batch is remembered too');
  t.like(first.stats(), { stored: 2, duplicates: 2 });
  await first.close();

  const second = await openArchive(t, dir);
  t.is(await second.append('b1', batch), 'duplicate');
  t.is(await second.append('b2', [metrics('dev-1', '2024-05-03T10:00:10Z')]), 'duplicate');
  t.is(await second.append('b3', [metrics('dev-1', '2024-05-03T10:00:20Z')]), 'stored');
  t.like(second.stats(), { stored: 1, duplicates: 2 });
  const stored = await collect(second.read({ kind: 'metrics', device: 'dev-1', since: new Date(0) }));
  t.deepEqual(stored.map((r) => r.batch), ['b1', 'b3']);
});

test('a write the hub died in is undone on open, so its redelivery is stored exactly once', async (t) => {
  const dir = await archiveDir(t);
  const archive = await TelemetryArchive.open(dir, { clock: archiveClock, logger: archiveLogger, fsyncEveryMs: 5 });
  await archive.append('b1', [metrics('dev-1', '2024-05-03T10:00:00Z', 1)]);
  await archive.close();
  // What a crash between the data and the commit leaves: a begin entry, the lines, no commit.
  const file = join(dir, 'metrics', '2024-05-03', 'dev-1.jsonl');
  const size = (await stat(file)).size;
  await appendFile(join(dir, 'journal', '2024-05-03.jsonl'), `${JSON.stringify({ begin: { 'metrics/2024-05-03/dev-1.jsonl': size } })}\n`);
  await appendFile(file, `${JSON.stringify({ ...metrics('dev-1', '2024-05-03T10:00:10Z', 2), batch: 'b2' })}\n{"kind":"met`);

  const reopened = await openArchive(t, dir);
  t.is((await stat(file)).size, size, 'the unfinished write is cut off');
  t.is(await reopened.append('b2', [metrics('dev-1', '2024-05-03T10:00:10Z', 2)]), 'stored');
  const stored = await collect(reopened.read({ kind: 'metrics', since: new Date(0) }));
  t.deepEqual(stored.map((r) => r.batch), ['b1', 'b2']);
  t.is(reopened.stats().skippedLines, 0);
});

test('a torn last line is skipped and counted, never thrown; a torn journal line is cut off', async (t) => {
  const dir = await archiveDir(t);
  const archive = await TelemetryArchive.open(dir, { clock: archiveClock, logger: archiveLogger, fsyncEveryMs: 5 });
  await archive.append('b1', [metrics('dev-1', '2024-05-03T10:00:00Z', 1), metrics('dev-1', '2024-05-03T10:00:10Z', 2)]);
  await archive.close();
  await appendFile(join(dir, 'metrics', '2024-05-03', 'dev-1.jsonl'), '{"kind":"metrics","device":"dev-1","ts":17');
  await appendFile(join(dir, 'journal', '2024-05-03.jsonl'), '{"commit":["b');

  const reopened = await openArchive(t, dir);
  const stored = await collect(reopened.read({ kind: 'metrics', device: 'dev-1', since: new Date(0) }));
  t.deepEqual(stored.map((r) => r.data), [{ requests: 1 }, { requests: 2 }]);
  t.is(reopened.stats().skippedLines, 1);
  t.true((await readFile(join(dir, 'journal', '2024-05-03.jsonl'), 'utf8')).endsWith('\n'), 'the torn journal line is gone');
  t.is(await reopened.append('b1', []), 'duplicate', 'the ids before the torn line still count');
});

test('names that could leave the archive are refused with a typed error, and nothing of the batch is written', async (t) => {
  const dir = await archiveDir(t);
  const archive = await openArchive(t, dir);
  const unsafe: ArchiveRecord[] = [
    metrics('../evil', '2024-05-03T10:00:00Z'),
    metrics('a/b', '2024-05-03T10:00:00Z'),
    metrics('..', '2024-05-03T10:00:00Z'),
    metrics('.hidden', '2024-05-03T10:00:00Z'),
    capture('dev-1', '../../etc', 1, '2024-05-03T10:00:00Z'),
    { ...capture('dev-1', 'iris', 1, '2024-05-03T10:00:00Z'), model: 'x/../../y' },
    { ...capture('dev-1', 'iris', 1, '2024-05-03T10:00:00Z'), version: '1/..' },
  ];
  for (const record of unsafe) {
    const err = await t.throwsAsync(archive.append('bad', [metrics('dev-1', '2024-05-03T10:00:00Z'), record]), { instanceOf: TelemetryArchiveError });
    t.is(err?.code, TelemetryArchiveCodes.NAME_INVALID);
  }
  t.throws(() => archive.read({ kind: 'metrics', device: '../evil', since: new Date(0) }), { code: TelemetryArchiveCodes.NAME_INVALID });
  t.throws(() => archive.read({ kind: 'captures', service: 'a/b', since: new Date(0) }), { code: TelemetryArchiveCodes.NAME_INVALID });
  await t.throwsAsync(archive.append('bad', [{ ...metrics('dev-1', '2024-05-03T10:00:00Z'), ts: Number.NaN }]), { code: TelemetryArchiveCodes.RECORD_INVALID });

  await archive.flush();
  t.deepEqual(await readdir(dir), ['journal'], 'no data was written');
  t.is(await archive.append('bad', [metrics('dev-1', '2024-05-03T10:00:00Z')]), 'stored', 'a refused batch id is not used up');
});

test('retention date math: days kept include today, in UTC', (t) => {
  const now = new Date('2024-05-10T00:30:00Z');
  const names = ['2024-05-10', '2024-05-09', '2024-05-08', '2024-05-07', '2023-12-31', 'notes', '2024-02-30', '2024-05-11'];
  t.deepEqual(expiredDays(names, { days: 3, now }), ['2024-05-07', '2023-12-31']);
  t.deepEqual(expiredDays(names, { days: 1, now }), ['2024-05-09', '2024-05-08', '2024-05-07', '2023-12-31']);
  t.throws(() => expiredDays(names, { days: 0, now }), { instanceOf: RangeError });
});

test('retention removes exactly the day directories older than the limit, of every kind', async (t) => {
  const dir = await archiveDir(t);
  const archive = await openArchive(t, dir);
  const days = ['2024-04-29', '2024-04-30', '2024-05-01', '2024-05-02', '2024-05-03'];
  for (const [i, day] of days.entries()) {
    await archive.append(`b${i}`, [metrics('dev-1', `${day}T12:00:00Z`), capture('dev-1', 'iris', 1, `${day}T12:00:00Z`)]);
  }
  // An old journal, as an earlier hub day would have left it, and a stray file that is no day.
  await writeFile(join(dir, 'journal', '2024-04-29.jsonl'), '{"commit":["old"]}\n');
  await mkdir(join(dir, 'metrics', 'exports'));

  const { removed } = await applyRetention(dir, { days: 3, now: new Date(ARCHIVE_NOW) });
  t.deepEqual(removed, ['captures/2024-04-29', 'captures/2024-04-30', 'journal/2024-04-29.jsonl', 'metrics/2024-04-29', 'metrics/2024-04-30']);
  t.deepEqual((await readdir(join(dir, 'metrics'))).sort(), ['2024-05-01', '2024-05-02', '2024-05-03', 'exports']);
  t.deepEqual((await readdir(join(dir, 'captures'))).sort(), ['2024-05-01', '2024-05-02', '2024-05-03']);
  t.deepEqual(await readdir(join(dir, 'journal')), ['2024-05-03.jsonl']);
  const left = await collect(archive.read({ kind: 'metrics', since: new Date(0) }));
  t.deepEqual(left.map((r) => new Date(r.ts).toISOString().slice(0, 10)), ['2024-05-01', '2024-05-02', '2024-05-03']);
  t.deepEqual((await applyRetention(dir, { days: 3, now: new Date(ARCHIVE_NOW) })).removed, [], 'a second run finds nothing');
});
