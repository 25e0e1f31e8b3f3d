/** ModelUpdates with fakes for the fleet and the builder, the lowdb store in memory and a manual clock. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Memory } from 'lowdb';
import { pino } from 'pino';
import type { Deployment, ServiceUpdate } from '../../shared/api/deployments.js';
import type { Image, ImageBuildRequest } from '../../shared/api/images.js';
import type { ManifestCreate, ManifestVersion } from '../../shared/api/manifests.js';
import type { ModelVersion } from '../../shared/api/models.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { ModelUpdates } from '../../hub/fleet/model-update.js';
import { BlobStore } from '../../hub/store/blob-store.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import type { ActorRecord } from '../../hub/store/store.js';
import { ManualClock } from '../helpers/fake-clock.js';

const ACTOR: ActorRecord = { keyId: 'k1', keyName: 'ci', idempotency: { key: 'retry-1', fingerprint: 'f' } };
const POLL_MS = 100;
const digest = (c: string) => `sha256:${c.repeat(64)}`;

const flush = async () => {
  for (let i = 0; i < 20; i += 1) await new Promise((r) => setImmediate(r));
};

interface Fixture {
  updates: ModelUpdates;
  store: LowdbHubStore;
  clock: ManualClock;
  created: Array<{ name: string; body: ManifestCreate; actor: ActorRecord }>;
  submitted: ImageBuildRequest[];
  cancelled: number[];
  /** builder.submit throws. */
  refuseBuilds?: boolean;
  serviceUpdates: Array<{ service: string; source: ServiceUpdate; actor: ActorRecord }>;
  builds: Map<number, Image>;
  deployment: Deployment;
  make(): ModelUpdates;
}

async function fixture(t: ExecutionContext, opts: { build?: number | null } = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-mu-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const blobs = await BlobStore.open(dir);
  const score = await blobs.putBytes(Buffer.from('export function run(x) { return x; }'));
  const deps = await blobs.putBytes(Buffer.from('{"dependencies":{}}'));
  const store = await LowdbHubStore.open(new Memory<HubData>(), 'memory');
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  const manifest: ManifestVersion = {
    name: 'js',
    version: 1,
    digest: digest('a'),
    runtime: 'node',
    models: [
      { name: 'iris', version: 1, digest: digest('1') },
      { name: 'aux', version: 3, digest: digest('3') },
    ],
    score: { filename: 'score.js', ...score },
    deps: { filename: 'package.json', ...deps },
    schema: { input: { type: 'object' }, output: { type: 'object' }, sample: { x: 1 } },
    env: { MODE: 'fast' },
    description: '',
    createdAt: new Date(clock.now()).toISOString(),
    createdBy: ACTOR,
  };
  const image = (id: number, over: Partial<Image> = {}): Image =>
    ({ id, status: 'succeeded', manifest: { name: 'js', version: 1, digest: manifest.digest }, platforms: { 'linux/amd64': digest('b'), 'linux/arm64': digest('c') }, error: null, ...over }) as Image;
  const builds = new Map<number, Image>([[7, image(7)]]);
  const models: Record<string, ModelVersion> = {
    'iris:1': { name: 'iris', version: 1, digest: digest('1') } as ModelVersion,
    'iris:2': { name: 'iris', version: 2, digest: digest('2') } as ModelVersion,
    'iris@prod': { name: 'iris', version: 2, digest: digest('2') } as ModelVersion,
    'other:1': { name: 'other', version: 1, digest: digest('4') } as ModelVersion,
  };
  const deployment = { service: 'iris', build: opts.build === undefined ? 7 : opts.build, image: 'r/js@sha256:x', deletedAt: null, rollout: { id: 1 } } as Deployment;
  const f: Fixture = { store, clock, created: [], submitted: [], cancelled: [], serviceUpdates: [], builds, deployment, updates: undefined as unknown as ModelUpdates, make: () => undefined as unknown as ModelUpdates };
  f.make = () =>
    new ModelUpdates({
      updates: store.modelUpdates,
      deployments: {
        get: async (service) => {
          if (service !== 'iris') throw new EdgemlError(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${service} is not deployed`, { httpStatus: 404 });
          return structuredClone(f.deployment);
        },
        update: async (service, source, actor) => {
          f.serviceUpdates.push({ service, source, actor });
          f.deployment = { ...f.deployment, build: source.build!, rollout: { ...f.deployment.rollout, id: f.deployment.rollout.id + 1 } };
          return structuredClone(f.deployment);
        },
      },
      images: { get: async (id) => builds.get(id), list: async ({ manifest }) => [...builds.values()].filter((i) => i.manifest.name === manifest) },
      manifests: { resolve: async (name, sel) => (name === 'js' && 'version' in sel && sel.version === 1 ? manifest : Promise.reject(new Error('unexpected manifest'))) },
      models: {
        resolve: async (name, sel) => {
          const found = models[`${name}${'alias' in sel ? `@${sel.alias}` : `:${(sel as { version: number }).version}`}`];
          if (!found) throw new EdgemlError(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${name} not found`, { httpStatus: 404 });
          return found;
        },
      },
      registry: {
        create: async (name, body, actor) => {
          f.created.push({ name, body, actor });
          return { ...manifest, version: 1 + f.created.length };
        },
      },
      builder: {
        submit: async (request) => {
          if (f.refuseBuilds) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, 'no registry configured', { httpStatus: 409 });
          f.submitted.push(request);
          const queued = image(100 + f.submitted.length, { status: 'queued', manifest: { name: 'js', version: request.version!, digest: digest('d') } });
          builds.set(queued.id, queued);
          return queued;
        },
        get: async (id) => builds.get(id)!,
        cancel: async (id) => {
          f.cancelled.push(id);
          const cancelled = { ...builds.get(id)!, status: 'cancelled' as const };
          builds.set(id, cancelled);
          return cancelled;
        },
      },
      blobs,
      clock,
      logger: pino({ level: 'silent' }),
      pollMs: POLL_MS,
    });
  f.updates = f.make();
  t.teardown(() => f.updates.stop());
  return f;
}

/** Moves the build on and lets the waiting update see it. */
async function finish(f: Fixture, id: number, change: Partial<Image>): Promise<void> {
  // The update reads files before it waits: real I/O, so turns of the event loop until its poll timer is set.
  for (let i = 0; f.clock.pending() === 0; i += 1) {
    if (i > 10_000) throw new Error('the update never waited for the build');
    await new Promise((r) => setImmediate(r));
  }
  f.builds.set(id, { ...f.builds.get(id)!, ...change });
  f.clock.advance(POLL_MS);
  await flush();
}

test('start: the manifest with the model of that name swapped, built for the current platforms, then the service update with the rollout', async (t) => {
  const f = await fixture(t);
  const started = await f.updates.start('iris', 'iris@prod', { strategy: 'canary', canary: '1' }, ACTOR);
  t.like(started, { id: 1, service: 'iris', model: 'iris:2', manifest: { name: 'js', version: 2 }, image: 101, status: 'building', rollout: null, error: null });
  t.false('idempotency' in started.createdBy, 'the view leaves the idempotency mark out');
  t.is(f.created.length, 1);
  const { name, body, actor } = f.created[0]!;
  t.is(name, 'js');
  t.deepEqual(body.models, ['iris:2', 'aux:3']);
  t.deepEqual(body.score, { filename: 'score.js', content: 'export function run(x) { return x; }' });
  t.deepEqual(body.deps, { filename: 'package.json', content: '{"dependencies":{}}' });
  t.deepEqual(body.env, { MODE: 'fast' });
  t.deepEqual(body.schema, { input: { type: 'object' }, output: { type: 'object' }, sample: { x: 1 } });
  t.false('idempotency' in actor, 'the manifest is not the answer to the Idempotency-Key');
  t.deepEqual(f.submitted, [{ manifest: 'js', version: 2, platforms: ['linux/amd64', 'linux/arm64'] }]);

  await finish(f, 101, { status: 'building' });
  t.is((await f.updates.get(1)).status, 'building');
  t.deepEqual(f.serviceUpdates, []);
  await finish(f, 101, { status: 'succeeded' });
  t.deepEqual(f.serviceUpdates.map((u) => [u.service, u.source]), [['iris', { build: 101, rollout: { strategy: 'canary', canary: '1' } }]]);
  t.like(await f.updates.get(1), { status: 'done', rollout: 2, error: null });
  t.like(await f.updates.madeBy((a) => a.idempotency?.key === 'retry-1'), { id: 1 });
});

test('refusals before anything is made: a foreign image, a model the manifest lacks, the version it runs, unknown service and model', async (t) => {
  const foreign = await fixture(t, { build: null });
  const err = await t.throwsAsync(foreign.updates.start('iris', 'iris:2', undefined, ACTOR), { instanceOf: EdgemlError });
  t.like(err, { code: ErrorCodes.HUB_CONFLICT, httpStatus: 409 });
  t.regex(err!.message, /runs r\/js@sha256:x, an image this hub did not build/);

  const f = await fixture(t);
  const lacking = await t.throwsAsync(f.updates.start('iris', 'other:1', undefined, ACTOR), { instanceOf: EdgemlError });
  t.like(lacking, { code: ErrorCodes.HUB_CONFLICT, httpStatus: 409 });
  t.regex(lacking!.message, /manifest js:1, which has no model other \(it has iris, aux\)/);
  const same = await t.throwsAsync(f.updates.start('iris', 'iris:1', undefined, ACTOR), { instanceOf: EdgemlError });
  t.regex(same!.message, /already runs iris:1/);
  await t.throwsAsync(f.updates.start('nope', 'iris:2', undefined, ACTOR), { instanceOf: EdgemlError, message: /not deployed/ });
  await t.throwsAsync(f.updates.start('iris', 'iris:9', undefined, ACTOR), { instanceOf: EdgemlError, message: /model iris not found/ });
  t.deepEqual([f.created, f.submitted, await f.updates.list()], [[], [], []]);
  await t.throwsAsync(f.updates.get(1), { instanceOf: EdgemlError, message: 'model update 1 not found' });
});

test('a failed build fails the update with its error and rolls nothing out', async (t) => {
  const f = await fixture(t);
  await f.updates.start('iris', 'iris:2', undefined, ACTOR);
  await finish(f, 101, { status: 'failed', error: { code: ErrorCodes.HUB_IMAGE_TEST_FAILED, message: 'the sample did not score' } });
  t.like(await f.updates.get(1), { status: 'failed', error: { code: ErrorCodes.HUB_IMAGE_TEST_FAILED, message: 'image 101 failed: the sample did not score' } });
  t.deepEqual(f.serviceUpdates, []);
});

test('prepare waits for the build and throws when it fails; rollOut is the service update', async (t) => {
  const f = await fixture(t);
  const prepared = f.updates.prepare('iris', 'iris:2', ACTOR);
  await flush();
  await finish(f, 101, { status: 'succeeded', ref: 'r/js@sha256:new' });
  t.like(await prepared, { manifest: { name: 'js', version: 2 }, image: { id: 101, status: 'succeeded' } });
  t.like(await f.updates.rollOut('iris', 101, undefined, ACTOR), { build: 101 });
  t.deepEqual(f.serviceUpdates.map((u) => u.source), [{ build: 101 }]);

  const g = await fixture(t);
  const failing = g.updates.prepare('iris', 'iris:2', ACTOR);
  await flush();
  await finish(g, 101, { status: 'cancelled', error: null });
  await t.throwsAsync(failing, { instanceOf: EdgemlError, message: 'image 101 cancelled' });
});

test('prepare with a signal: an abort while it waits cancels the candidate build and throws a cancellation', async (t) => {
  const f = await fixture(t);
  const abort = new AbortController();
  const prepared = f.updates.prepare('iris', 'iris:2', ACTOR, abort.signal);
  await finish(f, 101, { status: 'building' });
  t.deepEqual(f.cancelled, []);
  abort.abort();
  const err = await t.throwsAsync(prepared, { instanceOf: EdgemlError });
  t.like(err, { code: ErrorCodes.HUB_BUILD_CANCELLED, message: 'the model update was cancelled (image 101 cancelled)' });
  t.deepEqual(f.cancelled, [101]);
  t.deepEqual(f.serviceUpdates, []);

  // Aborted while the manifest is being made: the build just queued is cancelled too; aborted before: nothing is made.
  const g = await fixture(t);
  const early = new AbortController();
  const racing = g.updates.prepare('iris', 'iris:2', ACTOR, early.signal);
  early.abort();
  await t.throwsAsync(racing, { instanceOf: EdgemlError, message: /cancelled \(image 101 cancelled\)/ });
  t.deepEqual(g.cancelled, [101]);
  await t.throwsAsync(g.updates.prepare('iris', 'iris:2', ACTOR, early.signal), { instanceOf: EdgemlError, message: 'the model update was cancelled' });
  t.is(g.submitted.length, 1);
});

test('a stopped hub leaves the update building; the next start carries it on, and a service update already made is not made twice', async (t) => {
  const f = await fixture(t);
  await f.updates.start('iris', 'iris:2', undefined, ACTOR);
  await f.updates.stop();
  t.is((await f.updates.get(1)).status, 'building');
  f.builds.set(101, { ...f.builds.get(101)!, status: 'succeeded' });
  f.updates = f.make();
  await f.updates.resume();
  await flush();
  t.like(await f.updates.get(1), { status: 'done', rollout: 2 });
  t.is(f.serviceUpdates.length, 1);

  // Stopped after the service update, before it was recorded: the record says rolling-out.
  await f.store.modelUpdates.update(1, (r) => Object.assign(r, { status: 'rolling-out', rollout: null }));
  f.updates = f.make();
  await f.updates.resume();
  await flush();
  t.like(await f.updates.get(1), { status: 'done', rollout: 2 });
  t.is(f.serviceUpdates.length, 1, 'the service already runs the build');
});

test('a rollout request JSON Schema cannot judge is refused with a 400 before anything is made', async (t) => {
  const f = await fixture(t);
  const err = await t.throwsAsync(f.updates.start('iris', 'iris:2', { strategy: 'canary', gates: { minRequests: 5 } }, ACTOR), { instanceOf: EdgemlError });
  t.like(err, { code: ErrorCodes.HUB_INVALID_REQUEST, httpStatus: 400 });
  t.regex(err!.message, /^body\.rollout\.gates: give at least one of/);
  t.deepEqual([f.created, f.submitted, await f.updates.list()], [[], [], []]);
});

test('recorded before anything is made: a build that cannot be queued fails the record (found by its Idempotency-Key), and the error answers', async (t) => {
  const f = await fixture(t);
  f.refuseBuilds = true;
  await t.throwsAsync(f.updates.start('iris', 'iris:2', undefined, ACTOR), { instanceOf: EdgemlError, message: 'no registry configured' });
  t.like(await f.updates.get(1), { status: 'failed', manifest: { name: 'js', version: 2 }, image: null, error: { code: ErrorCodes.HUB_CONFLICT, message: 'no registry configured' } });
  t.like(await f.updates.madeBy((a) => a.idempotency?.key === 'retry-1'), { id: 1, status: 'failed' });
});

test('a hub stopped before the build was queued: the next start makes what the record lacks, reusing a build already queued', async (t) => {
  const f = await fixture(t);
  const draft = {
    service: 'iris',
    model: 'iris:2',
    manifest: null,
    image: null,
    status: 'building' as const,
    rollout: null,
    error: null,
    request: { rollout: null },
    createdAt: '2026-01-01T00:00:00.000Z',
    createdBy: ACTOR,
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
  // Stopped before its manifest was made.
  await f.store.modelUpdates.add(draft);
  await f.updates.resume();
  t.like(await f.updates.get(1), { status: 'building', manifest: { name: 'js', version: 2 }, image: 101 });
  t.deepEqual(f.submitted, [{ manifest: 'js', version: 2, platforms: ['linux/amd64', 'linux/arm64'] }]);
  await finish(f, 101, { status: 'succeeded' });
  t.like(await f.updates.get(1), { status: 'done', rollout: 2 });

  // Stopped after its build was queued, before that was recorded: the queued build is the update's.
  const g = await fixture(t);
  g.builds.set(55, { ...g.builds.get(7)!, id: 55, status: 'queued', manifest: { name: 'js', version: 4, digest: digest('e') } });
  await g.store.modelUpdates.add({ ...draft, manifest: { name: 'js', version: 4 } });
  await g.updates.resume();
  t.like(await g.updates.get(1), { status: 'building', manifest: { name: 'js', version: 4 }, image: 55 });
  t.deepEqual([g.created, g.submitted], [[], []]);

  // One that can no longer be made (the model is gone) fails.
  const h = await fixture(t);
  await h.store.modelUpdates.add({ ...draft, model: 'iris:9' });
  await h.updates.resume();
  t.like(await h.updates.get(1), { status: 'failed', manifest: null, image: null, error: { code: ErrorCodes.HUB_MODEL_NOT_FOUND } });
});
