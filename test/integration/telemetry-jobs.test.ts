/**
 * The archive's upkeep on the real filesystem: compaction (gzip of closed days, crash leftovers,
 * late batches) keeps every record readable exactly once, and the node-cron jobs run retention and
 * compaction on schedule.
 */
import { copyFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { compactDir, readableFiles } from '../../hub/telemetry/compaction.js';
import { startTelemetryJobs } from '../../hub/telemetry/jobs.js';
import type { ArchiveRecord, StoredRecord } from '../../hub/telemetry/records.js';
import { archiveClock, archiveDir, archiveLogger, collect, openArchive } from '../helpers/telemetry-archive.js';
import { waitFor } from '../helpers/wait.js';

const since = new Date(0);

const metrics = (device: string, day: string, n: number): ArchiveRecord => ({ kind: 'metrics', device, ts: Date.parse(`${day}T10:00:00Z`) + n, data: { n } });
const capture = (day: string, n: number): ArchiveRecord => ({ kind: 'captures', device: 'dev-1', service: 'iris', model: 'iris', version: 1, ts: Date.parse(`${day}T10:00:00Z`) + n, data: { n } });
const ns = (records: StoredRecord[]) => records.map((r) => (r.data as { n: number }).n);

test('readable files: each generation once (its .gz when there is one), in order, then the live file', (t) => {
  const names = ['b.jsonl', 'a~2.jsonl', 'a.jsonl', 'a~1.jsonl.gz', 'a~1.jsonl', 'a~2.jsonl.gz.tmp', 'a~10.jsonl.gz', 'notes.txt', 'b~1.jsonl.gz'];
  t.deepEqual(readableFiles(names), ['a~1.jsonl.gz', 'a~2.jsonl', 'a~10.jsonl.gz', 'a.jsonl', 'b~1.jsonl.gz', 'b.jsonl']);
  t.deepEqual(readableFiles(names, 'b'), ['b~1.jsonl.gz', 'b.jsonl']);
  t.deepEqual(readableFiles(names, 'c'), []);
});

test('compaction gzips days before the given one; reads see the same records, and late batches start a new live file', async (t) => {
  const dir = await archiveDir(t);
  const archive = await openArchive(t, dir);
  let n = 0;
  for (const day of ['2024-04-30', '2024-05-01', '2024-05-02', '2024-05-03']) {
    await archive.append(`b${n}`, [metrics('dev-1', day, n), metrics('dev-2', day, n + 100), capture(day, n)]);
    n++;
  }
  const before = { metrics: await collect(archive.read({ kind: 'metrics', since })), captures: await collect(archive.read({ kind: 'captures', service: 'iris', since })) };

  const result = await archive.compact(new Date('2024-05-02T08:00:00Z'));
  t.deepEqual(result, { days: 2, files: 6 });
  t.deepEqual((await readdir(join(dir, 'metrics', '2024-04-30'))).sort(), ['dev-1~1.jsonl.gz', 'dev-2~1.jsonl.gz']);
  t.deepEqual(await readdir(join(dir, 'captures', '2024-05-01', 'iris')), ['iris@1~1.jsonl.gz']);
  t.deepEqual((await readdir(join(dir, 'metrics', '2024-05-02'))).sort(), ['dev-1.jsonl', 'dev-2.jsonl'], 'yesterday and today stay plain');
  t.deepEqual(await collect(archive.read({ kind: 'metrics', since })), before.metrics);
  t.deepEqual(await collect(archive.read({ kind: 'captures', service: 'iris', since })), before.captures);
  t.deepEqual(ns(await collect(archive.read({ kind: 'metrics', device: 'dev-2', since }))), [100, 101, 102, 103]);

  // A device back after days away: its batch lands in the compacted day, after what is there.
  await archive.append('late', [metrics('dev-1', '2024-04-30', 50)]);
  t.deepEqual(ns(await collect(archive.read({ kind: 'metrics', device: 'dev-1', since, until: new Date('2024-05-01T00:00:00Z') }))), [0, 50]);
  t.deepEqual(await archive.compact(new Date('2024-05-02T08:00:00Z')), { days: 1, files: 1 });
  t.deepEqual((await readdir(join(dir, 'metrics', '2024-04-30'))).sort(), ['dev-1~1.jsonl.gz', 'dev-1~2.jsonl.gz', 'dev-2~1.jsonl.gz']);
  t.deepEqual(ns(await collect(archive.read({ kind: 'metrics', device: 'dev-1', since }))), [0, 50, 1, 2, 3]);
  t.deepEqual(await archive.compact(new Date('2024-05-02T08:00:00Z')), { days: 0, files: 0 }, 'nothing left to do');
});

test('what a crash leaves mid-compaction is read once and finished by the next run', async (t) => {
  const dir = await archiveDir(t);
  const archive = await openArchive(t, dir);
  await archive.append('b1', [metrics('dev-1', '2024-04-30', 1), metrics('dev-2', '2024-04-30', 2), metrics('dev-3', '2024-04-30', 3)]);
  await archive.compact(new Date('2024-05-01T00:00:00Z'));
  const day = join(dir, 'metrics', '2024-04-30');
  // dev-1: killed after the gzip of generation 2 was renamed in, before its claimed file was removed.
  const line = `${JSON.stringify({ kind: 'metrics', device: 'dev-1', ts: Date.parse('2024-04-30T11:00:00Z'), data: { n: 11 }, batch: 'x' })}\n`;
  await writeFile(join(day, 'dev-1~2.jsonl'), line);
  const twin = await archiveDir(t);
  await writeFile(join(twin, 'dev-1.jsonl'), line);
  await compactDir(twin);
  await copyFile(join(twin, 'dev-1~1.jsonl.gz'), join(day, 'dev-1~2.jsonl.gz'));
  // dev-2: killed after the claim, during the gzip (a temp file, no .gz yet).
  await rename(join(day, 'dev-2~1.jsonl.gz'), join(day, 'dev-2~1.jsonl.gz.tmp'));
  await writeFile(join(day, 'dev-2~1.jsonl'), `${JSON.stringify({ kind: 'metrics', device: 'dev-2', ts: Date.parse('2024-04-30T10:00:00Z') + 2, data: { n: 2 }, batch: 'b1' })}\n`);
  const read = async () => ns(await collect(archive.read({ kind: 'metrics', since })));
  t.deepEqual(await read(), [1, 11, 2, 3], 'each generation once');
  const result = await archive.compact(new Date('2024-05-01T00:00:00Z'));
  t.is(result.files, 0, 'no live file was left; only leftovers were finished');
  t.deepEqual((await readdir(day)).sort(), ['dev-1~1.jsonl.gz', 'dev-1~2.jsonl.gz', 'dev-2~1.jsonl.gz', 'dev-3~1.jsonl.gz']);
  t.deepEqual(await read(), [1, 11, 2, 3]);
});

test('the jobs: retention runs at start and removes only days past the limit; compaction runs on its cron schedule', async (t) => {
  const dir = await archiveDir(t);
  const archive = await openArchive(t, dir);
  const days = ['2024-04-28', '2024-04-29', '2024-04-30', '2024-05-01', '2024-05-02', '2024-05-03'];
  for (const [i, day] of days.entries()) await archive.append(`b${i}`, [metrics('dev-1', day, i), capture(day, i)]);

  const jobs = startTelemetryJobs({ archive, retentionDays: 4, clock: archiveClock, logger: archiveLogger, schedule: { retention: '0 0 1 1 *', compaction: '* * * * * *' } });
  t.teardown(() => jobs.stop());
  // Kept: 05-03 (today) back to 04-30; compaction (every second) then gzips what is before 05-02.
  await waitFor('retention and a scheduled compaction', async () => (await readdir(join(dir, 'metrics'))).length === 4 && (await readdir(join(dir, 'metrics', '2024-05-01')))[0]?.endsWith('.gz'), 10_000);
  t.deepEqual((await readdir(join(dir, 'metrics'))).sort(), ['2024-04-30', '2024-05-01', '2024-05-02', '2024-05-03']);
  t.deepEqual((await readdir(join(dir, 'captures'))).sort(), ['2024-04-30', '2024-05-01', '2024-05-02', '2024-05-03']);
  t.deepEqual(await readdir(join(dir, 'metrics', '2024-05-02')), ['dev-1.jsonl']);
  t.deepEqual(ns(await collect(archive.read({ kind: 'metrics', since }))), [2, 3, 4, 5]);
  await jobs.stop();
  t.throws(() => startTelemetryJobs({ archive, retentionDays: 4, clock: archiveClock, logger: archiveLogger, schedule: { retention: 'every day' } }), { instanceOf: RangeError, message: /retention schedule/ });
});

test('a read under way when compaction starts sees every record: compaction waits for it, and later reads wait for compaction', async (t) => {
  const dir = await archiveDir(t);
  const archive = await openArchive(t, dir);
  for (const [i, device] of ['dev-1', 'dev-2', 'dev-3'].entries()) {
    await archive.append(`b${i}`, [metrics(device, '2024-04-29', i), metrics(device, '2024-04-30', i + 10), metrics(device, '2024-05-01', i + 20)]);
  }
  const reading = archive.read({ kind: 'metrics', since })[Symbol.asyncIterator]();
  const first = await reading.next();
  let compacted = false;
  const compaction = archive.compact(new Date('2024-05-02T00:00:00Z')).then((r) => {
    compacted = true;
    return r;
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.false(compacted, 'compaction waits for the read');
  const rest: StoredRecord[] = [];
  for (let r = await reading.next(); !r.done; r = await reading.next()) rest.push(r.value);
  t.is([first.value as StoredRecord, ...rest].length, 9, 'the read saw every record');
  const later = collect(archive.read({ kind: 'metrics', since }));
  t.deepEqual((await compaction).files, 9);
  t.is((await later).length, 9, 'a read started during compaction saw every record too');
});
