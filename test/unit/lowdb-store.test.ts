/**
 * The embedded hub store (hub/store/lowdb-store.ts) over lowdb's in-memory adapter: schema version
 * checks, version numbering, resolution, aliases, guarded deletes, manifests, API keys, referenced
 * blobs, and that a failed write leaves the committed data untouched. No filesystem.
 */
import test, { type ExecutionContext } from 'ava';
import { Memory, type Adapter } from 'lowdb';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import type { ApiKeyRecord, DeviceObservation, DeviceRecord, NewManifestVersion, NewModelVersion } from '../../hub/store/store.js';

const LABEL = '/data/hub.json';
const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ci' };

function digestOf(seed: string): string {
  // Not a real hash: 64 hex characters derived from the seed, distinct per seed.
  const hex = Buffer.from(seed).toString('hex');
  return `sha256:${hex.padEnd(64, '0').slice(0, 64)}`;
}

let draftCounter = 0;

function modelDraft(name: string, overrides: Partial<NewModelVersion> = {}): NewModelVersion {
  const digest = overrides.digest ?? digestOf(`${name}-${(draftCounter += 1)}`);
  return {
    name,
    kind: 'file',
    digest,
    size: 1234,
    files: [{ path: 'model.onnx', size: 1234, digest }],
    framework: 'onnx',
    description: '',
    tags: {},
    lineage: { runId: null, dataset: null, metrics: {} },
    createdAt: '2024-05-01T12:00:00.000Z',
    createdBy: ACTOR,
    ...overrides,
  };
}

function manifestDraft(name: string, models: NewManifestVersion['models'], overrides: Partial<NewManifestVersion> = {}): NewManifestVersion {
  return {
    name,
    digest: digestOf(`manifest-${name}`),
    runtime: 'python',
    models,
    score: { filename: 'score.py', digest: digestOf(`score-${name}`), size: 10 },
    deps: null,
    schema: { input: {}, output: {}, sample: {} },
    env: {},
    description: '',
    createdAt: '2024-05-01T12:00:00.000Z',
    createdBy: ACTOR,
    ...overrides,
  };
}

function keyRecord(id: string, scope: ApiKeyRecord['scope'], revokedAt: string | null = null): ApiKeyRecord {
  return { id, name: `key-${id}`, scope, hash: 'ab'.repeat(32), createdAt: '2024-05-01T12:00:00.000Z', createdBy: null, revokedAt };
}

async function freshStore(): Promise<{ store: LowdbHubStore; memory: Memory<HubData> }> {
  const memory = new Memory<HubData>();
  const store = await LowdbHubStore.open(memory, LABEL);
  return { store, memory };
}

/** Awaits `promise`, expects an EdgemlError with `code` (and `httpStatus` if given), returns it. */
async function rejectsWith(t: ExecutionContext, promise: Promise<unknown>, code: ErrorCode, httpStatus?: number): Promise<EdgemlError> {
  const err = await t.throwsAsync(promise, { instanceOf: EdgemlError });
  t.is(err?.code, code);
  if (httpStatus !== undefined) t.is(err?.httpStatus, httpStatus);
  return err as EdgemlError;
}

/**
 * An adapter that keeps a copy of what was written (like a file would) and rejects writes while
 * `failWrites` is set, without storing anything.
 */
class FailingAdapter implements Adapter<HubData> {
  failWrites = false;
  writes = 0;
  stored: HubData | null = null;

  async read(): Promise<HubData | null> {
    return this.stored === null ? null : structuredClone(this.stored);
  }

  async write(data: HubData): Promise<void> {
    if (this.failWrites) throw new Error('disk full (FailingAdapter)');
    this.writes += 1;
    this.stored = structuredClone(data);
  }
}

// --- opening and schema versions ---

const EPOCH = /^[0-9a-f]{32}$/;

test('a fresh store writes schemaVersion 7, empty collections and a new epoch', async (t) => {
  const { store, memory } = await freshStore();
  const { epoch, ...rest } = (await memory.read())!;
  t.deepEqual(rest, {
    schemaVersion: 7,
    rollouts: { nextId: 1, records: [] },
    deletedDeployments: [],
    apiKeys: [],
    models: {},
    manifests: {},
    images: { nextId: 1, records: [] },
    devices: {},
    deployments: {},
    desired: {},
  });
  t.regex(epoch, EPOCH);
  t.is(store.desired.epoch(), epoch);
  t.not((await freshStore()).store.desired.epoch(), epoch, 'every store has its own epoch');
});

test('the epoch is kept: a reopened store has the same one', async (t) => {
  const { store, memory } = await freshStore();
  await store.desired.save(new Map([['gw-1', { generation: 3, services: [] }]]));
  const reopened = await LowdbHubStore.open(memory, LABEL);
  t.is(reopened.desired.epoch(), store.desired.epoch());
});

test('a version-4 document is migrated: its desired states are kept and it gets an epoch', async (t) => {
  const memory = new Memory<HubData>();
  const desired = { 'gw-1': { generation: 7, services: [] } };
  const device = deviceRecord('gw-1');
  const v4 = {
    schemaVersion: 4,
    apiKeys: [],
    models: {},
    manifests: {},
    images: { nextId: 1, records: [] },
    devices: { 'gw-1': device },
    deployments: {},
    desired,
  } as unknown as HubData;
  await memory.write(structuredClone(v4));
  const store = await LowdbHubStore.open(memory, LABEL);
  const written = (await memory.read())!;
  t.is(written.schemaVersion, 7);
  t.regex(written.epoch, EPOCH);
  t.is(store.desired.epoch(), written.epoch);
  t.deepEqual(written.desired, desired);
  t.deepEqual(written.devices, { 'gw-1': device });
  t.deepEqual(await store.desired.all(), new Map(Object.entries(desired)));
});

test('a version-5 deployment gets its revision history: every device on its current revision, its last rollout over', async (t) => {
  const memory = new Memory<HubData>();
  const AT = '2026-11-01T00:00:00.000Z';
  const deployment = {
    service: 'iris',
    revision: 2,
    image: `reg/iris@sha256:${'2'.repeat(64)}`,
    digest: `sha256:${'2'.repeat(64)}`,
    build: 4,
    models: [{ name: 'iris', version: 2, digest: `sha256:${'3'.repeat(64)}` }],
    target: { site: 'lab' },
    limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null },
    keyId: 'abcdefgh',
    keyHash: 'f'.repeat(64),
    rollout: { revision: 2, strategy: 'all-at-once', startedAt: AT, devices: ['gw-1'] },
    createdAt: AT,
    createdBy: { keyId: 'k', keyName: 'admin' },
    updatedAt: AT,
  };
  await memory.write({ schemaVersion: 5, apiKeys: [], models: {}, manifests: {}, images: { nextId: 1, records: [] }, devices: {}, deployments: { iris: deployment }, desired: {}, epoch: 'e'.repeat(32) } as unknown as HubData);
  const store = await LowdbHubStore.open(memory, LABEL);
  const migrated = (await store.deployments.get('iris'))!;
  t.is(migrated.stableRevision, 2);
  t.deepEqual(migrated.assignments, {});
  t.deepEqual(migrated.revisions, [{ revision: 2, image: deployment.image, digest: deployment.digest, build: 4, models: deployment.models, limits: deployment.limits, createdAt: AT }]);
  t.deepEqual(migrated.rollout, { id: 0, kind: 'update', revision: 2, strategy: 'all-at-once', phase: 'succeeded', devices: ['gw-1'] });
  t.deepEqual(await store.rollouts.list({}), []);
  t.false('scale' in migrated, 'no scale stored: it reads as one replica');
  t.deepEqual(await store.deployments.listDeleted(), []);
});

test('deployments.delete moves the record to the deleted ones and aborts its active rollout in one write; the name is free again', async (t) => {
  const { store } = await freshStore();
  const AT = '2026-12-01T00:00:00.000Z';
  const by = { keyId: 'k1', keyName: 'admin' };
  const deployment = {
    service: 'iris',
    revision: 1,
    image: `reg/iris@sha256:${'1'.repeat(64)}`,
    digest: `sha256:${'1'.repeat(64)}`,
    build: null,
    models: [],
    target: { site: 'lab' },
    limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null },
    keyId: 'abcdefgh',
    keyHash: 'f'.repeat(64),
    stableRevision: null,
    revisions: [],
    assignments: {},
    rollout: { id: 0, kind: 'create' as const, revision: 1, strategy: 'all-at-once' as const, phase: 'running' as const, devices: [] },
    createdAt: AT,
    createdBy: by,
    updatedAt: AT,
  };
  const options = { batchSize: '25%', canary: '10%', soak: '0s', maxUnavailable: null, deviceTimeout: '10m', maxFailures: '0', offlineWait: '0s' };
  const rollout = {
    service: 'iris',
    kind: 'create' as const,
    revision: 1,
    fromRevision: null,
    strategy: 'all-at-once' as const,
    options,
    phase: 'running' as const,
    reason: null,
    batchCount: 1,
    batch: 0,
    soakUntil: null,
    rolledBackBy: null,
    rollbackOf: null,
    devices: {},
    createdAt: AT,
    updatedAt: AT,
    finishedAt: null,
    createdBy: by,
  };
  const started = await store.rollouts.start(rollout, { add: (id) => ({ ...deployment, rollout: { ...deployment.rollout, id } }) });
  const LATER = '2026-12-02T00:00:00.000Z';
  const deleted = await store.deployments.delete('iris', LATER, by, 'service deleted by admin (k1)');
  t.like(deleted, { service: 'iris', deletedAt: LATER, deletedBy: by, rollout: { phase: 'aborted' } });
  t.is(await store.deployments.get('iris'), undefined);
  t.deepEqual(await store.deployments.list(), []);
  t.deepEqual(await store.deployments.listDeleted(), [deleted]);
  t.like(await store.rollouts.get(started.rollout.id), { phase: 'aborted', reason: 'service deleted by admin (k1)', finishedAt: LATER });
  await rejectsWith(t, store.deployments.delete('iris', LATER, by, 'again'), ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND);

  await store.deployments.add({ ...deployment, revision: 1 });
  t.is((await store.deployments.get('iris'))?.deletedAt, undefined, 'deployed again under the same name');
  t.is((await store.deployments.listDeleted()).length, 1, 'the old one is kept');
});

test('a version-5 document without a valid epoch is refused as damaged', async (t) => {
  for (const epoch of [undefined, '', 'not an epoch']) {
    const memory = new Memory<HubData>();
    await memory.write({ schemaVersion: 5, apiKeys: [], models: {}, manifests: {}, images: { nextId: 1, records: [] }, devices: {}, deployments: {}, desired: {}, epoch } as unknown as HubData);
    const err = await rejectsWith(t, LowdbHubStore.open(memory, LABEL), ErrorCodes.HUB_STORE_CORRUPT);
    t.regex(err.message, /lacks a valid epoch/);
  }
});

test('a version-1 document is migrated to the current version on open, keeping its data, and written back', async (t) => {
  const memory = new Memory<HubData>();
  const key = keyRecord('000000000001', 'admin');
  // Version 2 was deleted before the upgrade: the next number is 3, not 2.
  const kept = { ...modelDraft('kept'), version: 1 };
  const v1 = {
    schemaVersion: 1,
    apiKeys: [key],
    models: { kept: { nextVersion: 3, aliases: { production: 1 }, versions: [kept] } },
    manifests: {},
  } as unknown as HubData;
  await memory.write(structuredClone(v1));
  const store = await LowdbHubStore.open(memory, LABEL);

  const written = (await memory.read())!;
  t.is(written.schemaVersion, 7);
  t.regex(written.epoch, EPOCH);
  t.deepEqual(written.rollouts, { nextId: 1, records: [] });
  t.deepEqual(written.images, { nextId: 1, records: [] });
  t.deepEqual(written.devices, {});
  t.deepEqual(written.deployments, {});
  t.deepEqual(written.desired, {});
  t.deepEqual(written.apiKeys, v1.apiKeys);
  t.deepEqual(written.models, v1.models);

  t.deepEqual(await store.apiKeys.get(key.id), key);
  t.deepEqual(await store.models.resolve('kept', { version: 1 }), { ...kept, aliases: ['production'] });
  t.is((await store.models.resolve('kept', { alias: 'production' })).digest, kept.digest);
  t.is((await store.models.addVersion(modelDraft('kept'))).version, 3);
});

test('a document with a higher schemaVersion is refused', async (t) => {
  const memory = new Memory<HubData>();
  await memory.write({
    schemaVersion: 8,
    apiKeys: [],
    models: {},
    manifests: {},
    images: { nextId: 1, records: [] },
    devices: {},
    deployments: {},
    desired: {},
    epoch: 'e'.repeat(32),
    rollouts: { nextId: 1, records: [] },
    deletedDeployments: [],
  });
  const err = await rejectsWith(t, LowdbHubStore.open(memory, LABEL), ErrorCodes.HUB_STORE_VERSION);
  t.is(err.code, 'HUB_E_STORE_VERSION_UNSUPPORTED');
  t.true(err.message.includes(LABEL));
  t.true(err.message.includes('8'));
});

test('a version-2 document without images is refused as damaged', async (t) => {
  const memory = new Memory<HubData>();
  await memory.write({ schemaVersion: 2, apiKeys: [], models: {}, manifests: {} } as unknown as HubData);
  const err = await rejectsWith(t, LowdbHubStore.open(memory, LABEL), ErrorCodes.HUB_STORE_CORRUPT);
  t.regex(err.message, /lacks images/);
});

test('a document without schemaVersion is refused as corrupt', async (t) => {
  const memory = new Memory<HubData>();
  await memory.write({ apiKeys: [], models: {}, manifests: {} } as unknown as HubData);
  const err = await rejectsWith(t, LowdbHubStore.open(memory, LABEL), ErrorCodes.HUB_STORE_CORRUPT);
  t.is(err.code, 'HUB_E_STORE_CORRUPT');
  t.true(err.message.includes(LABEL));
});

test('an existing document is opened with its data', async (t) => {
  const { store: first, memory } = await freshStore();
  await first.models.addVersion(modelDraft('resnet50'));
  const reopened = await LowdbHubStore.open(memory, LABEL);
  const v = await reopened.models.resolve('resnet50', { latest: true });
  t.is(v.version, 1);
  t.is((await reopened.models.addVersion(modelDraft('resnet50'))).version, 2);
});

// --- model versions ---

test('models.addVersion assigns 1, 2, 3 per name', async (t) => {
  const { store } = await freshStore();
  const a = await store.models.addVersion(modelDraft('resnet50'));
  const b = await store.models.addVersion(modelDraft('resnet50'));
  const other = await store.models.addVersion(modelDraft('bert'));
  const c = await store.models.addVersion(modelDraft('resnet50'));
  t.deepEqual([a.version, b.version, c.version], [1, 2, 3]);
  t.is(other.version, 1);
  t.deepEqual(a.aliases, []);
  t.is(a.name, 'resnet50');
});

test('20 concurrent addVersion calls get exactly 1..20', async (t) => {
  const { store, memory } = await freshStore();
  const results = await Promise.all(Array.from({ length: 20 }, () => store.models.addVersion(modelDraft('resnet50'))));
  const versions = results.map((r) => r.version).sort((x, y) => x - y);
  t.deepEqual(
    versions,
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  const listed = await store.models.list({ name: 'resnet50' });
  t.is(listed.length, 20);
  t.is((await memory.read())?.models.resnet50?.versions.length, 20);
});

test('a deleted latest version number is never reused', async (t) => {
  const { store } = await freshStore();
  await store.models.addVersion(modelDraft('resnet50'));
  await store.models.addVersion(modelDraft('resnet50'));
  await store.models.deleteVersion('resnet50', 2);
  t.is((await store.models.resolve('resnet50', { latest: true })).version, 1);
  const next = await store.models.addVersion(modelDraft('resnet50'));
  t.is(next.version, 3);
  const err = await rejectsWith(t, store.models.resolve('resnet50', { version: 2 }), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
  t.true(err.message.includes('resnet50:2'));
});

test('resolve by version, latest and alias', async (t) => {
  const { store } = await freshStore();
  const v1 = await store.models.addVersion(modelDraft('resnet50'));
  const v2 = await store.models.addVersion(modelDraft('resnet50'));
  await store.models.setAlias('resnet50', 'production', 1);

  const byVersion = await store.models.resolve('resnet50', { version: 2 });
  t.is(byVersion.version, 2);
  t.is(byVersion.digest, v2.digest);

  const latest = await store.models.resolve('resnet50', { latest: true });
  t.is(latest.version, 2);

  const byAlias = await store.models.resolve('resnet50', { alias: 'production' });
  t.is(byAlias.version, 1);
  t.is(byAlias.digest, v1.digest);
  t.deepEqual(byAlias.aliases, ['production']);
});

test('resolve answers 404 HUB_E_MODEL_NOT_FOUND naming what was asked for', async (t) => {
  const { store } = await freshStore();
  const unknown = await rejectsWith(t, store.models.resolve('nosuch', { latest: true }), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
  t.true(unknown.message.includes('nosuch'));

  await store.models.addVersion(modelDraft('resnet50'));
  const badVersion = await rejectsWith(t, store.models.resolve('resnet50', { version: 7 }), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
  t.true(badVersion.message.includes('resnet50:7'));

  const badAlias = await rejectsWith(t, store.models.resolve('resnet50', { alias: 'staging' }), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
  t.true(badAlias.message.includes('resnet50'));
  t.true(badAlias.message.includes('staging'));
});

test('setAlias returns the previous target and moves the alias', async (t) => {
  const { store } = await freshStore();
  await store.models.addVersion(modelDraft('resnet50'));
  await store.models.addVersion(modelDraft('resnet50'));

  t.deepEqual(await store.models.setAlias('resnet50', 'production', 1), { previous: null });
  t.deepEqual(await store.models.setAlias('resnet50', 'production', 2), { previous: 1 });

  t.is((await store.models.resolve('resnet50', { alias: 'production' })).version, 2);
  t.deepEqual((await store.models.resolve('resnet50', { version: 1 })).aliases, []);
  t.deepEqual((await store.models.resolve('resnet50', { version: 2 })).aliases, ['production']);
  t.deepEqual((await store.models.summary('resnet50'))?.aliases, { production: 2 });
});

test('setAlias to a missing version is a 404 and changes nothing', async (t) => {
  const { store } = await freshStore();
  await store.models.addVersion(modelDraft('resnet50'));
  await store.models.setAlias('resnet50', 'production', 1);
  const err = await rejectsWith(t, store.models.setAlias('resnet50', 'production', 9), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
  t.true(err.message.includes('resnet50:9'));
  t.is((await store.models.resolve('resnet50', { alias: 'production' })).version, 1);
});

test('deleteVersion refuses (409) while an alias references the version, naming it', async (t) => {
  const { store } = await freshStore();
  await store.models.addVersion(modelDraft('resnet50'));
  await store.models.setAlias('resnet50', 'production', 1);
  await store.models.setAlias('resnet50', 'canary', 1);

  const err = await rejectsWith(t, store.models.deleteVersion('resnet50', 1), ErrorCodes.HUB_CONFLICT, 409);
  t.true(err.message.includes('resnet50:1'));
  t.true(err.message.includes('alias production'));
  t.true(err.message.includes('alias canary'));
  t.is((await store.models.resolve('resnet50', { version: 1 })).version, 1);

  await store.models.deleteAlias('resnet50', 'production');
  await store.models.deleteAlias('resnet50', 'canary');
  await store.models.deleteVersion('resnet50', 1);
  await rejectsWith(t, store.models.resolve('resnet50', { version: 1 }), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
});

test('deleteVersion refuses (409) while a manifest references the version, naming it', async (t) => {
  const { store } = await freshStore();
  const model = await store.models.addVersion(modelDraft('resnet50'));
  const manifest = await store.manifests.addVersion(manifestDraft('vision', [{ name: 'resnet50', version: 1, digest: model.digest }]));
  t.is(manifest.version, 1);

  const err = await rejectsWith(t, store.models.deleteVersion('resnet50', 1), ErrorCodes.HUB_CONFLICT, 409);
  t.true(err.message.includes('manifest vision:1'));
  t.is((await store.models.list({ name: 'resnet50' })).length, 1);
});

test('deleteVersion of an unknown version is a 404', async (t) => {
  const { store } = await freshStore();
  await store.models.addVersion(modelDraft('resnet50'));
  const err = await rejectsWith(t, store.models.deleteVersion('resnet50', 5), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
  t.true(err.message.includes('resnet50:5'));
  await rejectsWith(t, store.models.deleteVersion('nosuch', 1), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
});

test('list filters by name and by every given tag', async (t) => {
  const { store } = await freshStore();
  await store.models.addVersion(modelDraft('resnet50', { tags: { team: 'vision', stage: 'dev' } }));
  await store.models.addVersion(modelDraft('resnet50', { tags: { team: 'vision', stage: 'prod' } }));
  await store.models.addVersion(modelDraft('bert', { tags: { team: 'nlp', stage: 'prod' } }));
  await store.models.addVersion(modelDraft('albert', { tags: { team: 'vision' } }));

  const all = await store.models.list({});
  t.deepEqual(
    all.map((v) => `${v.name}:${v.version}`),
    ['albert:1', 'bert:1', 'resnet50:1', 'resnet50:2'],
  );

  t.deepEqual(
    (await store.models.list({ name: 'resnet50' })).map((v) => v.version),
    [1, 2],
  );
  t.deepEqual(await store.models.list({ name: 'nosuch' }), []);

  t.deepEqual(
    (await store.models.list({ tags: { team: 'vision' } })).map((v) => `${v.name}:${v.version}`),
    ['albert:1', 'resnet50:1', 'resnet50:2'],
  );
  t.deepEqual(
    (await store.models.list({ tags: { team: 'vision', stage: 'prod' } })).map((v) => `${v.name}:${v.version}`),
    ['resnet50:2'],
  );
  t.deepEqual(
    (await store.models.list({ name: 'bert', tags: { team: 'vision' } })),
    [],
  );
});

// --- manifests ---

test('manifests.addVersion numbers versions and pins models', async (t) => {
  const { store } = await freshStore();
  const model = await store.models.addVersion(modelDraft('resnet50'));
  const ref = [{ name: 'resnet50', version: 1, digest: model.digest }];
  t.is((await store.manifests.addVersion(manifestDraft('vision', ref))).version, 1);
  t.is((await store.manifests.addVersion(manifestDraft('vision', ref))).version, 2);
  t.is((await store.manifests.resolve('vision', { latest: true })).version, 2);
  t.deepEqual((await store.manifests.resolve('vision', { version: 1 })).models, ref);
});

test('manifests.addVersion refuses a pinned model version that was deleted', async (t) => {
  const { store } = await freshStore();
  const model = await store.models.addVersion(modelDraft('resnet50'));
  await store.models.deleteVersion('resnet50', 1);
  const err = await rejectsWith(
    t,
    store.manifests.addVersion(manifestDraft('vision', [{ name: 'resnet50', version: 1, digest: model.digest }])),
    ErrorCodes.HUB_CONFLICT,
    409,
  );
  t.true(err.message.includes('resnet50:1'));
  t.deepEqual(await store.manifests.list({}), []);
});

test('manifests.addVersion refuses a pinned model version whose digest differs', async (t) => {
  const { store } = await freshStore();
  await store.models.addVersion(modelDraft('resnet50', { digest: digestOf('real') }));
  await rejectsWith(
    t,
    store.manifests.addVersion(manifestDraft('vision', [{ name: 'resnet50', version: 1, digest: digestOf('other') }])),
    ErrorCodes.HUB_CONFLICT,
    409,
  );
  await rejectsWith(t, store.manifests.resolve('vision', { latest: true }), ErrorCodes.HUB_MANIFEST_NOT_FOUND, 404);
});

// --- API keys ---

test('apiKeys.revoke refuses the last active admin key with 409', async (t) => {
  const { store } = await freshStore();
  await store.apiKeys.add(keyRecord('000000000001', 'admin'));
  await store.apiKeys.add(keyRecord('000000000002', 'deploy'));
  await store.apiKeys.add(keyRecord('000000000003', 'admin', '2024-04-01T00:00:00.000Z'));
  const err = await rejectsWith(t, store.apiKeys.revoke('000000000001', '2024-05-02T00:00:00.000Z'), ErrorCodes.HUB_CONFLICT, 409);
  t.true(err.message.includes('000000000001'));
  t.is((await store.apiKeys.get('000000000001'))?.revokedAt, null);
});

test('apiKeys.revoke allows an admin key while another active admin exists, and is idempotent', async (t) => {
  const { store } = await freshStore();
  await store.apiKeys.add(keyRecord('000000000001', 'admin'));
  await store.apiKeys.add(keyRecord('000000000002', 'admin'));

  const revoked = await store.apiKeys.revoke('000000000001', '2024-05-02T00:00:00.000Z');
  t.is(revoked.revokedAt, '2024-05-02T00:00:00.000Z');
  t.is((await store.apiKeys.get('000000000001'))?.revokedAt, '2024-05-02T00:00:00.000Z');

  // Revoking again keeps the first time and does not count it as "the last admin".
  const again = await store.apiKeys.revoke('000000000001', '2024-06-01T00:00:00.000Z');
  t.is(again.revokedAt, '2024-05-02T00:00:00.000Z');

  // Now 0002 is the last active admin.
  await rejectsWith(t, store.apiKeys.revoke('000000000002', '2024-05-03T00:00:00.000Z'), ErrorCodes.HUB_CONFLICT, 409);
});

test('apiKeys.revoke of an unknown id is a 404 and add refuses a duplicate id', async (t) => {
  const { store } = await freshStore();
  await rejectsWith(t, store.apiKeys.revoke('ffffffffffff', '2024-05-02T00:00:00.000Z'), ErrorCodes.HUB_APIKEY_NOT_FOUND, 404);
  await store.apiKeys.add(keyRecord('000000000001', 'read'));
  await rejectsWith(t, store.apiKeys.add(keyRecord('000000000001', 'admin')), ErrorCodes.HUB_CONFLICT, 409);
  t.is((await store.apiKeys.get('000000000001'))?.scope, 'read');
  t.is((await store.apiKeys.list()).length, 1);
});

// --- referenced blobs ---

test('referencedBlobs holds model digests and manifest score and deps digests', async (t) => {
  const { store } = await freshStore();
  const m1 = await store.models.addVersion(modelDraft('resnet50', { digest: digestOf('m1') }));
  const m2 = await store.models.addVersion(modelDraft('bert', { digest: digestOf('m2') }));
  await store.manifests.addVersion(
    manifestDraft('vision', [{ name: 'resnet50', version: 1, digest: m1.digest }], {
      digest: digestOf('manifest-content'),
      score: { filename: 'score.py', digest: digestOf('score-a'), size: 5 },
      deps: { filename: 'requirements.txt', digest: digestOf('deps-a'), size: 7 },
    }),
  );
  await store.manifests.addVersion(
    manifestDraft('nlp', [{ name: 'bert', version: 1, digest: m2.digest }], {
      runtime: 'node',
      score: { filename: 'score.js', digest: digestOf('score-b'), size: 5 },
      deps: null,
    }),
  );
  const refs = await store.referencedBlobs();
  t.deepEqual([...refs].sort(), [digestOf('m1'), digestOf('m2'), digestOf('score-a'), digestOf('deps-a'), digestOf('score-b')].sort());
  // The manifest's own content digest names no blob.
  t.false(refs.has(digestOf('manifest-content')));
});

// --- failed writes ---

test('a write whose adapter rejects leaves the committed data unchanged, and the next write works', async (t) => {
  const adapter = new FailingAdapter();
  const store = await LowdbHubStore.open(adapter, LABEL);
  await store.models.addVersion(modelDraft('resnet50'));
  await store.models.setAlias('resnet50', 'production', 1);
  const writesBefore = adapter.writes;

  adapter.failWrites = true;
  await t.throwsAsync(store.models.addVersion(modelDraft('resnet50')), { message: /disk full/ });
  await t.throwsAsync(store.models.deleteAlias('resnet50', 'production'), { message: /disk full/ });

  // Readers do not see the failed changes.
  t.deepEqual(
    (await store.models.list({ name: 'resnet50' })).map((v) => v.version),
    [1],
  );
  t.is((await store.models.resolve('resnet50', { alias: 'production' })).version, 1);
  t.is(adapter.writes, writesBefore);
  t.is(adapter.stored?.models.resnet50?.versions.length, 1);

  adapter.failWrites = false;
  const next = await store.models.addVersion(modelDraft('resnet50'));
  t.is(next.version, 2, 'the failed addVersion did not consume a version number');
  t.deepEqual(
    (await store.models.list({ name: 'resnet50' })).map((v) => v.version),
    [1, 2],
  );
  t.deepEqual(adapter.stored?.models.resnet50?.aliases, { production: 1 });
  t.is(adapter.stored?.models.resnet50?.versions.length, 2);
});

test('a change that throws leaves nothing half-applied', async (t) => {
  const { store, memory } = await freshStore();
  await store.models.addVersion(modelDraft('resnet50', { digest: digestOf('real') }));
  // The manifest check throws after the manifests entry could have been created: it must not appear.
  await rejectsWith(
    t,
    store.manifests.addVersion(manifestDraft('vision', [{ name: 'resnet50', version: 1, digest: digestOf('other') }])),
    ErrorCodes.HUB_CONFLICT,
  );
  t.deepEqual((await memory.read())?.manifests, {});
  t.deepEqual(await store.manifests.list({}), []);
});

// User-chosen names may collide with Object.prototype members.
test('resolve of an unknown model named "constructor" is a 404', async (t) => {
  const { store } = await freshStore();
  await rejectsWith(t, store.models.resolve('constructor', { latest: true }), ErrorCodes.HUB_MODEL_NOT_FOUND, 404);
});

test('models.addVersion works for the valid model name "constructor"', async (t) => {
  t.teardown(() => {
    delete (Object as unknown as Record<string, unknown>).nextVersion;
  });
  const { store } = await freshStore();
  const v = await store.models.addVersion(modelDraft('constructor'));
  t.is(v.version, 1);
});

// --- devices ---

function deviceRecord(id: string): DeviceRecord {
  return {
    id,
    labels: { site: 'lab' },
    tokenHash: 'cd'.repeat(32),
    enrolledAt: '2026-11-24T00:00:00.000Z',
    enrolledBy: ACTOR,
    revokedAt: null,
    observed: { status: null, offlineReason: null, onlineSince: null, lastSeen: null, facts: null },
  };
}

test('devices: an id is enrolled once, even after it was revoked; labels and revocation are stored', async (t) => {
  const { store } = await freshStore();
  await store.devices.add(deviceRecord('gw-1'));
  await store.devices.add(deviceRecord('constructor'));
  await rejectsWith(t, store.devices.add(deviceRecord('gw-1')), ErrorCodes.HUB_CONFLICT);
  t.deepEqual((await store.devices.setLabels('gw-1', { site: 'b', zone: '2' })).labels, { site: 'b', zone: '2' });
  const revoked = await store.devices.revoke('gw-1', '2026-11-24T01:00:00.000Z');
  t.is(revoked.revokedAt, '2026-11-24T01:00:00.000Z');
  t.is((await store.devices.revoke('gw-1', '2026-11-24T02:00:00.000Z')).revokedAt, '2026-11-24T01:00:00.000Z', 'the first revocation time stays');
  const again = await rejectsWith(t, store.devices.add(deviceRecord('gw-1')), ErrorCodes.HUB_CONFLICT);
  t.regex(again.message, /revoked; ids are not reused/);
  await rejectsWith(t, store.devices.setLabels('nope', {}), ErrorCodes.HUB_DEVICE_NOT_FOUND);
  t.deepEqual((await store.devices.list()).map((d) => d.id), ['constructor', 'gw-1']);
});

test('devices.get: one device as stored, a copy; undefined for an unknown id (also one named like an Object member)', async (t) => {
  const { store } = await freshStore();
  await store.devices.add(deviceRecord('gw-1'));
  await store.devices.update('gw-1', (r) => void (r.certificates = [{ serial: '0a', purpose: 'client', names: ['gw-1'], notBefore: '2026-11-24T00:00:00.000Z', notAfter: '2026-12-24T00:00:00.000Z' }]));
  const one = await store.devices.get('gw-1');
  t.deepEqual(one, (await store.devices.list())[0]);
  t.is(one?.certificates?.[0]?.serial, '0a');
  one!.labels.site = 'changed';
  t.is((await store.devices.get('gw-1'))?.labels.site, 'lab', 'the caller got a copy');
  t.is(await store.devices.get('nope'), undefined);
  t.is(await store.devices.get('constructor'), undefined);
});

test('devices: observations, reported states included, are saved in one write for many devices; unknown ids are skipped', async (t) => {
  const { store, memory } = await freshStore();
  await store.devices.add(deviceRecord('a'));
  await store.devices.add(deviceRecord('b'));
  const seen: DeviceObservation = {
    status: 'online',
    offlineReason: null,
    onlineSince: '2026-11-24T00:00:01.000Z',
    lastSeen: '2026-11-24T00:00:02.000Z',
    facts: null,
    reported: { v: 1, observedGeneration: 2, phase: 'converged', services: [{ name: 'iris', revision: 1, image: 'r@sha256:x', phase: 'running', servingRevision: 1, progress: null, error: null }] },
  };
  const lost: DeviceObservation = { ...seen, status: 'offline', offlineReason: 'lost' };
  await store.devices.saveObservations(new Map([['a', seen], ['b', lost], ['ghost', seen]]));
  const stored = (await memory.read())!;
  t.deepEqual(stored.devices.a?.observed, seen);
  t.is(stored.devices.b?.observed.offlineReason, 'lost');
  t.false('ghost' in stored.devices);
});
