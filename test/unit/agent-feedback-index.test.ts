/**
 * The gateway's index of captured request ids (agent/feedback/request-index.ts): what it answers,
 * that it survives a reopen (and a kill: lines are written without waiting for close), and that
 * it is bounded by age and by count, removing whole segments.
 */
import { mkdtemp, readdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { RequestIndex, type CapturedRequest } from '../../agent/feedback/request-index.js';
import type { CaptureSample } from '../../shared/protocol.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { waitFor } from '../helpers/wait.js';

const DAY = 24 * 3600_000;
const logger = pino({ level: 'silent' });

async function dir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'request-index-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

const req = (service: string, ts: number, revision = 2): CapturedRequest => ({ service, revision, models: [{ name: 'iris', version: 4 }], ts });

/** Lines on disk over all segments. */
async function linesOnDisk(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(d)).sort()) out.push(...(await readFile(join(d, name), 'utf8')).split('\n').filter(Boolean));
  return out;
}

test('a recorded id answers with what answered it; an id never recorded is unknown', async (t) => {
  const clock = new FakeClock(10 * DAY);
  const index = await RequestIndex.open(await dir(t), { clock, logger });
  t.teardown(() => index.close());
  index.record('r-1', req('iris', clock.ms));
  t.deepEqual(index.get('r-1'), req('iris', clock.ms));
  t.is(index.get('r-2'), undefined);
  index.record('r-1', req('iris', clock.ms + 5, 3));
  t.is(index.get('r-1')?.revision, 3, 'the latest capture of an id wins');
});

test('ids survive a reopen, and are on disk before close (a kill -9 keeps them)', async (t) => {
  const d = await dir(t);
  const clock = new FakeClock(10 * DAY);
  const first = await RequestIndex.open(d, { clock, logger });
  for (let i = 0; i < 50; i++) first.record(`r-${i}`, req(i % 2 ? 'iris' : 'other', clock.ms + i));
  // Not closed: what a killed agent leaves behind.
  await waitFor('50 lines on disk', async () => (await linesOnDisk(d)).length === 50, 5000, 5);
  const second = await RequestIndex.open(d, { clock, logger });
  t.teardown(() => Promise.all([first.close(), second.close()]).then(() => undefined));
  t.is(second.size, 50);
  t.deepEqual(second.get('r-7'), req('iris', clock.ms + 7));
  t.deepEqual(second.get('r-8'), req('other', clock.ms + 8));
});

test('a torn last line (power cut mid-write) is skipped, the rest kept, and the next run writes on a line of its own', async (t) => {
  const d = await dir(t);
  const clock = new FakeClock(10 * DAY);
  const first = await RequestIndex.open(d, { clock, logger });
  first.record('a', req('iris', clock.ms));
  await first.close();
  const [segment] = await readdir(d);
  await appendFile(join(d, segment!), '["torn","iris",2,[["iris"');
  const second = await RequestIndex.open(d, { clock, logger });
  second.record('b', req('iris', clock.ms));
  await second.close();
  const third = await RequestIndex.open(d, { clock, logger });
  t.teardown(() => third.close());
  t.is(third.size, 2);
  t.truthy(third.get('a'));
  t.truthy(third.get('b'));
  t.is(third.get('torn'), undefined);
});

test('segments whose newest id is past the retention are removed; ids within it stay', async (t) => {
  const d = await dir(t);
  const clock = new FakeClock(100 * DAY);
  const index = await RequestIndex.open(d, { clock, logger, segmentBytes: 100 });
  // Old ids fill one segment (each line is 42 bytes: the third passes 100 bytes and closes it).
  for (let i = 0; i < 3; i++) index.record(`old-${i}`, req('iris', clock.ms - 8 * DAY));
  // Once written, the closed segment is pruned.
  await waitFor('the old segment removed', () => index.get('old-0') === undefined, 5000, 2);
  for (let i = 0; i < 4; i++) index.record(`new-${i}`, req('iris', clock.ms - 6 * DAY));
  await index.close();
  const reopened = await RequestIndex.open(d, { clock, logger, segmentBytes: 100 });
  t.teardown(() => reopened.close());
  t.is(reopened.get('old-0'), undefined, 'captured 8 days ago: gone');
  t.truthy(reopened.get('new-3'), 'captured 6 days ago: kept (at least 7 days)');
  t.false((await linesOnDisk(d)).some((l) => l.includes('old-')), 'the old segment file is removed');
});

test('over maxEntries the oldest segments go, while the agent runs', async (t) => {
  const d = await dir(t);
  const clock = new FakeClock(100 * DAY);
  const index = await RequestIndex.open(d, { clock, logger, segmentBytes: 300, maxEntries: 10 });
  t.teardown(() => index.close());
  for (let i = 0; i < 40; i++) {
    index.record(`r-${i}`, req('iris', clock.ms));
    // One write per line: each is its own flush, so segments close as they fill.
    await waitFor(`line ${i} on disk`, async () => (await linesOnDisk(d)).length > 0 && (await linesOnDisk(d)).at(-1)!.includes(`"r-${i}"`), 5000, 2);
  }
  t.true(index.size <= 10 + 6, `bounded (${index.size})`);
  t.is(index.get('r-0'), undefined);
  t.truthy(index.get('r-39'));
  t.true((await linesOnDisk(d)).length <= 10 + 6, 'the disk is bounded too');
});

test('indexing(sink) records each sample with a request id, then hands it on', async (t) => {
  const clock = new FakeClock(10 * DAY);
  const index = await RequestIndex.open(await dir(t), { clock, logger });
  t.teardown(() => index.close());
  const got: CaptureSample[] = [];
  const sink = index.indexing({ add: (s) => void got.push(s) });
  const sample: CaptureSample = {
    ts: new Date(clock.ms).toISOString(),
    requestId: 'q-1',
    service: 'iris',
    revision: 2,
    models: [{ name: 'iris', version: 4 }],
    status: 200,
    latencyMs: 3,
    request: { bytes: 2, truncated: false, json: {} },
    response: { bytes: 2, truncated: false, json: {} },
  };
  sink.add(sample);
  const { requestId: _, ...older } = sample;
  sink.add(older);
  t.is(got.length, 2);
  t.deepEqual(index.get('q-1'), req('iris', clock.ms));
  t.is(index.size, 1);
});

test('unreadable lines are skipped with a warning', async (t) => {
  const d = await dir(t);
  await writeFile(join(d, '000000000001.jsonl'), 'not json\n["ok","iris",2,[["iris",4]],5]\n[1,2]\n');
  const logs: string[] = [];
  const index = await RequestIndex.open(d, { clock: new FakeClock(10), logger: pino({ level: 'warn' }, { write: (l: string) => void logs.push(l) }) });
  t.teardown(() => index.close());
  t.is(index.size, 1);
  t.deepEqual(index.get('ok'), req('iris', 5));
  t.true(logs.some((l) => l.includes('"skipped":2')));
});

test('the id that fills a segment closes it: ids recorded with it or after go to the next file, where they are credited', async (t) => {
  const d = await dir(t);
  const clock = new FakeClock(100 * DAY);
  // Each line is about 42 bytes: the third passes 100.
  const index = await RequestIndex.open(d, { clock, logger, segmentBytes: 100 });
  for (const id of ['a', 'b', 'c', 'd']) index.record(id, req('iris', clock.ms));
  await index.close();
  const files = (await readdir(d)).sort();
  const ids = async (name: string) => (await readFile(join(d, name), 'utf8')).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as string[])[0]);
  t.deepEqual(await ids(files[0]!), ['a', 'b', 'c']);
  t.deepEqual(await ids(files[1]!), ['d']);
});

test('ids recorded while lines are being written: pruning drops from memory exactly what it drops from disk', async (t) => {
  const d = await dir(t);
  const clock = new FakeClock(100 * DAY);
  const index = await RequestIndex.open(d, { clock, logger, segmentBytes: 150, maxEntries: 12 });
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 3; i++) index.record(`r-${round}-${i}`, req('iris', clock.ms));
    // Let the write of this round start, so the next round's ids arrive while it runs.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await index.close();
  const reopened = await RequestIndex.open(d, { clock, logger, segmentBytes: 150, maxEntries: 12 });
  t.teardown(() => reopened.close());
  const onDisk = new Set((await linesOnDisk(d)).map((l) => (JSON.parse(l) as string[])[0]));
  const inMemory = Array.from({ length: 40 }, (_, round) => [0, 1, 2].map((i) => `r-${round}-${i}`)).flat().filter((id) => index.get(id) !== undefined);
  t.deepEqual(inMemory, [...onDisk], 'the running index knows exactly the ids on disk');
  t.truthy(index.get('r-39-2'));
});

test('the files are bounded in bytes too (maxBytes): the oldest segments go first', async (t) => {
  const d = await dir(t);
  const clock = new FakeClock(100 * DAY);
  const index = await RequestIndex.open(d, { clock, logger, segmentBytes: 200, maxBytes: 600 });
  t.teardown(() => index.close());
  const long = 'x'.repeat(100);
  for (let i = 0; i < 40; i++) {
    index.record(`${long}-${i}`, req('iris', clock.ms));
    await waitFor(`line ${i} on disk`, async () => (await linesOnDisk(d)).at(-1)?.includes(`"${long}-${i}"`) === true, 5000, 2);
  }
  const bytes = (await linesOnDisk(d)).reduce((sum, l) => sum + Buffer.byteLength(l) + 1, 0);
  t.true(bytes <= 600 + 200 + 200, `bounded (${bytes} bytes)`);
  t.is(index.get(`${long}-0`), undefined);
  t.truthy(index.get(`${long}-39`));
});

test('a sample whose request body was not kept as JSON is not indexed (a label could never join its input)', async (t) => {
  const clock = new FakeClock(10 * DAY);
  const index = await RequestIndex.open(await dir(t), { clock, logger });
  t.teardown(() => index.close());
  const got: CaptureSample[] = [];
  const sink = index.indexing({ add: (s) => void got.push(s) });
  const base = { ts: new Date(clock.ms).toISOString(), service: 'iris', revision: 2, models: [{ name: 'iris', version: 4 }], status: 200, latencyMs: 3, response: { bytes: 2, truncated: false, json: {} } };
  sink.add({ ...base, requestId: 'withheld', request: { bytes: 20, truncated: false, withheld: true } });
  sink.add({ ...base, requestId: 'cut', request: { bytes: 2_000_000, truncated: true, text: '{"features":[1,' } });
  sink.add({ ...base, requestId: 'kept', request: { bytes: 2, truncated: false, json: {} } });
  t.is(got.length, 3, 'every sample still goes to capture');
  t.is(index.get('withheld'), undefined);
  t.is(index.get('cut'), undefined);
  t.truthy(index.get('kept'));
});
