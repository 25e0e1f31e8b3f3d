/**
 * Base datasets (hub/datasets/dataset-registry.ts, dataset-lines.ts): lines checked as they stream
 * in, whatever the chunking; the first bad line named; nothing stored on a refusal; versions are
 * content-addressed blobs read back row by row.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Memory } from 'lowdb';
import { DatasetLineChecker, MAX_DATASET_LINE_BYTES } from '../../hub/datasets/dataset-lines.js';
import { DatasetRegistry, type DatasetRow } from '../../hub/datasets/dataset-registry.js';
import { BlobStore } from '../../hub/store/blob-store.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import type { DatasetRepository, DatasetVersionRecord } from '../../hub/store/store.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';

const actor = { keyId: 'k1', keyName: 'ci' };

/** The repository's contract, in memory. */
function memoryDatasets(): DatasetRepository & { records: DatasetVersionRecord[] } {
  const records: DatasetVersionRecord[] = [];
  return {
    records,
    addVersion: async (draft) => {
      const record = { ...draft, version: records.filter((r) => r.name === draft.name).length + 1 };
      records.push(record);
      return record;
    },
    list: async ({ name }) => records.filter((r) => name === undefined || r.name === name),
    resolve: async (name, selector) => {
      const mine = records.filter((r) => r.name === name);
      const found = 'version' in selector ? mine.find((r) => r.version === selector.version) : 'latest' in selector ? mine.at(-1) : undefined;
      if (!found) throw new EdgemlError(ErrorCodes.HUB_DATASET_NOT_FOUND, `dataset ${name} not found`, { httpStatus: 404 });
      return found;
    },
  };
}

async function setUp(t: ExecutionContext, maxUploadBytes = 1024 * 1024) {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-datasets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const blobs = await BlobStore.open(dir);
  const datasets = memoryDatasets();
  const registry = new DatasetRegistry({ datasets, blobs, clock: new FakeClock(Date.parse('2024-05-01T00:00:00Z')), maxUploadBytes });
  const storedBlobs = async () => (await readdir(join(dir, 'sha256'))).length + (await readdir(join(dir, 'tmp'))).length;
  return { registry, datasets, storedBlobs };
}

/** `text` in chunks of `size` bytes, so lines cross chunk boundaries. */
async function* chunks(text: string, size = 7): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(rows: AsyncIterable<DatasetRow>): Promise<DatasetRow[]> {
  const out: DatasetRow[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

test('lines are checked across chunk boundaries; blank lines are skipped; a last line without newline counts', (t) => {
  const checker = new DatasetLineChecker();
  for (const part of ['{"input":{"x":[1]},', '"label":1}\n\n{"inp', 'ut":2,"label":"b","w":1}\r\n{"input":3,', '"label":[0]}']) checker.write(Buffer.from(part));
  t.is(checker.finish(), 3);
});

test('the first bad line is named: not JSON, not an object, no input, no label or a null label, too long', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['{"input":1,"label":1}\n{"input":2,"label":2\n', /^line 2: not JSON/],
    ['{"input":1,"label":1}\n\n[1,2]\n', /^line 3: not a JSON object/],
    ['{"label":1}\n', /^line 1: has no "input"/],
    ['{"input":1,"label":null}\n', /^line 1: has no "label"/],
  ];
  for (const [text, message] of cases) {
    const checker = new DatasetLineChecker();
    const err = t.throws(() => {
      checker.write(Buffer.from(text));
      checker.finish();
    });
    t.regex(err!.message, message);
    t.is((err as EdgemlError).code, ErrorCodes.HUB_DATASET_INVALID);
    t.is((err as EdgemlError).httpStatus, 400);
  }
  const long = new DatasetLineChecker();
  t.throws(() => long.write(Buffer.alloc(MAX_DATASET_LINE_BYTES + 1, 0x20)), { message: /^line 1: longer than/ });
});

test('a registered file is a content-addressed, numbered version; its rows read back as they were written', async (t) => {
  const { registry, storedBlobs } = await setUp(t);
  const text = '{"input":{"x":[1,2]},"label":0}\n{"input":{"x":[3,4]},"label":1,"note":"kept"}\n';
  const v1 = await registry.register({ name: 'iris-base', description: 'first', source: chunks(text), actor });
  t.like(v1, { name: 'iris-base', version: 1, rows: 2, size: Buffer.byteLength(text), description: 'first', createdAt: '2024-05-01T00:00:00.000Z', createdBy: actor });
  t.regex(v1.digest, /^sha256:[0-9a-f]{64}$/);
  const v2 = await registry.register({ name: 'iris-base', source: chunks(text, 3), actor });
  // Same bytes, same blob: one file in the store for both versions.
  t.like(v2, { version: 2, digest: v1.digest, description: '' });
  t.is(await storedBlobs(), 1);
  t.deepEqual(await collect(registry.rows('iris-base', 1)), [
    { input: { x: [1, 2] }, label: 0 },
    { input: { x: [3, 4] }, label: 1, note: 'kept' },
  ]);
  t.like(await registry.resolve('iris-base', 'latest'), { version: 2 });
  await t.throwsAsync(registry.resolve('iris-base', 3), { code: ErrorCodes.HUB_DATASET_NOT_FOUND });
});

test('rows read back split as they were checked: at LF only, a bare CR inside a line and CRLF endings included', async (t) => {
  const { registry } = await setUp(t);
  const text = '{"input":1,\r"label":2}\n{"input":3,"label":4}\r\n{"input":5,"label":6}';
  t.like(await registry.register({ name: 'cr', source: chunks(text, 5), actor }), { rows: 3 });
  t.deepEqual(await collect(registry.rows('cr', 1)), [
    { input: 1, label: 2 },
    { input: 3, label: 4 },
    { input: 5, label: 6 },
  ]);
});

test('a file with a bad line, an empty file, a reserved name or one over the size limit stores nothing', async (t) => {
  const { registry, datasets, storedBlobs } = await setUp(t, 64);
  await t.throwsAsync(registry.register({ name: 'bad', source: chunks('{"input":1,"label":1}\n{"input":2}\n'), actor }), { code: ErrorCodes.HUB_DATASET_INVALID, message: /^line 2: has no "label"/ });
  await t.throwsAsync(registry.register({ name: 'empty', source: chunks('\n\n'), actor }), { code: ErrorCodes.HUB_DATASET_INVALID, message: /no rows/ });
  await t.throwsAsync(registry.register({ name: 'export', source: chunks('{"input":1,"label":1}\n'), actor }), { code: ErrorCodes.HUB_INVALID_REQUEST });
  await t.throwsAsync(registry.register({ name: 'big', source: chunks('{"input":1,"label":1}\n'.repeat(4)), actor }), { code: ErrorCodes.HUB_PAYLOAD_TOO_LARGE });
  t.deepEqual(datasets.records, []);
  t.is(await storedBlobs(), 0);
});

test('the hub store keeps dataset versions across a reopen, numbers them per name, and counts their blobs as referenced', async (t) => {
  const memory = new Memory<HubData>();
  const store = await LowdbHubStore.open(memory, '/data/hub.json');
  const draft = { name: 'iris-base', digest: `sha256:${'a'.repeat(64)}`, size: 10, rows: 2, description: '', createdAt: '2024-05-01T00:00:00.000Z', createdBy: actor };
  t.like(await store.datasets.addVersion(draft), { version: 1 });
  t.like(await store.datasets.addVersion({ ...draft, digest: `sha256:${'b'.repeat(64)}` }), { version: 2 });
  t.like(await store.datasets.addVersion({ ...draft, name: 'other' }), { version: 1 });
  const reopened = await LowdbHubStore.open(memory, '/data/hub.json');
  t.deepEqual((await reopened.datasets.list({})).map((v) => `${v.name}:${v.version}`), ['iris-base:1', 'iris-base:2', 'other:1']);
  t.deepEqual((await reopened.datasets.list({ name: 'constructor' })), []);
  t.like(await reopened.datasets.resolve('iris-base', { latest: true }), { version: 2 });
  await t.throwsAsync(reopened.datasets.resolve('iris-base', { version: 3 }), { code: ErrorCodes.HUB_DATASET_NOT_FOUND, message: 'dataset iris-base:3 not found' });
  await t.throwsAsync(reopened.datasets.resolve('nope', { latest: true }), { code: ErrorCodes.HUB_DATASET_NOT_FOUND });
  const refs = await reopened.referencedBlobs();
  t.true(refs.has(`sha256:${'a'.repeat(64)}`) && refs.has(`sha256:${'b'.repeat(64)}`));
});
