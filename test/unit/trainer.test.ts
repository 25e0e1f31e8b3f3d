/**
 * Trainers without Docker: the recipe checks, the trainer image's Dockerfile, the runner's
 * `docker run` arguments, and the build queue (hub/training/trainer-builder.ts) with scripted
 * build steps — the image state's transitions, a hub stop mid-build that the next start queues
 * again, and a build interrupted too often that is failed rather than left stuck. The real Docker
 * path is in test/integration/trainers.test.ts.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Memory } from 'lowdb';
import { pino } from 'pino';
import type { TrainerCreate } from '../../shared/api/trainers.js';
import { systemClock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { BuildLogs } from '../../hub/builds/build-log.js';
import type { BuildxRequest, BuildxResult } from '../../hub/builds/buildx.js';
import { MAX_ATTEMPTS } from '../../hub/builds/build-queue.js';
import { BlobStore } from '../../hub/store/blob-store.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import { TrainerBuilder, type TrainerBuildSteps } from '../../hub/training/trainer-builder.js';
import { hubPlatform, renderTrainerDockerfile, trainScriptName } from '../../hub/training/trainer-image.js';
import { checkTrainerRecipe, TrainerRegistry } from '../../hub/training/trainer-registry.js';
import { containerName, layOutModel, TRAINING_LABEL, trainingRunArgs, type TrainingRequest } from '../../hub/training/training-runner.js';
import type { ModelVersion } from '../../shared/api/models.js';
import { tempDir } from '../helpers/edgeml-process.js';
import { tarOf } from '../helpers/tar.js';
import { waitFor } from '../helpers/wait.js';

const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ci' };
const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;

// --- recipe ----------------------------------------------------------------------------------

const recipe = (over: Partial<TrainerCreate> = {}): TrainerCreate => ({ runtime: 'node', train: { filename: 'train.js', content: 'console.log(1)' }, ...over });

test('checkTrainerRecipe refuses the wrong script or deps file for the runtime, an empty script, reserved variables', (t) => {
  t.notThrows(() => checkTrainerRecipe(recipe({ deps: { filename: 'package.json', content: '{}' }, env: { LR: '0.1' } })));
  t.notThrows(() => checkTrainerRecipe(recipe({ runtime: 'python', train: { filename: 'train.py', content: 'print(1)' }, deps: { filename: 'requirements.txt', content: '' } })));
  const refused = (body: TrainerCreate, message: RegExp) => {
    const err = t.throws(() => checkTrainerRecipe(body));
    t.true(err instanceof EdgemlError && err.code === ErrorCodes.HUB_TRAINER_INVALID && err.httpStatus === 400);
    t.regex(err!.message, message);
  };
  refused(recipe({ runtime: 'python' }), /python runtime runs a \.py file, not train\.js/);
  refused(recipe({ train: { filename: 'train.js', content: ' \n' } }), /train\.js is empty/);
  refused(recipe({ deps: { filename: 'requirements.txt', content: '' } }), /node runtime takes package\.json/);
  refused(recipe({ deps: { filename: 'package.json', content: '{' } }), /not valid JSON/);
  refused(recipe({ env: { EDGEML_OUTPUT_DIR: '/tmp' } }), /EDGEML_OUTPUT_DIR is set by the trainer runtime/);
});

// --- image -----------------------------------------------------------------------------------

test('the trainer Dockerfile: dependencies next to the script, which is the command, env and labels, an unprivileged default user', (t) => {
  const node = renderTrainerDockerfile({ runtime: 'node', baseImage: 'reg/base-node:1', script: trainScriptName('fit.mjs'), env: { LR: '0.1 "x"' }, labels: { 'io.edgeml.trainer': 'iris:2' } });
  t.is(
    node,
    [
      'ARG BASE_IMAGE=reg/base-node:1',
      'FROM ${BASE_IMAGE}',
      'ARG TARGETARCH',
      'ENV NODE_ENV="production"',
      'COPY deps/${TARGETARCH}/ /opt/edgeml/trainer/',
      'COPY app/ /opt/edgeml/trainer/',
      'ENV LR="0.1 \\"x\\""',
      'LABEL io.edgeml.trainer="iris:2"',
      'WORKDIR /opt/edgeml/trainer',
      'CMD ["node","/opt/edgeml/trainer/train.mjs"]',
      'USER 65534:65534',
      '',
    ].join('\n'),
  );
  const python = renderTrainerDockerfile({ runtime: 'python', baseImage: 'reg/base-python:1', script: 'train.py', env: {}, labels: {} });
  t.regex(python, /ENV PYTHONPATH="\/opt\/edgeml\/pylib"/);
  t.regex(python, /COPY deps\/requirements.txt \/opt\/edgeml\/trainer\/requirements.txt/);
  t.regex(python, /pip install .* --target \/opt\/edgeml\/pylib -r \/opt\/edgeml\/trainer\/requirements.txt/);
  t.regex(python, /CMD \["python3","\/opt\/edgeml\/trainer\/train.py"\]/);
});

test('hubPlatform names the hub CPU as Docker does', (t) => {
  t.is(hubPlatform('x64'), 'linux/amd64');
  t.is(hubPlatform('arm64'), 'linux/arm64');
});

// --- runner arguments ------------------------------------------------------------------------

test('trainingRunArgs: no network, limits, read-only data and model, writable output, the contract variables, the hub label, nothing else in the env', (t) => {
  const req: TrainingRequest = {
    runId: 'job/7',
    image: 'reg/p/trainer-iris@sha256:abc',
    trainData: '/data/run/train.jsonl',
    evalData: '/data/run/eval.jsonl',
    modelDir: '/data/run/model',
    outputDir: '/data/run/output',
    params: { epochs: 3, note: 'a b' },
    instance: 'hub123',
    memory: '1g',
    cpus: 1.5,
    timeoutMs: 1000,
    log: () => undefined,
    signal: new AbortController().signal,
  };
  const args = trainingRunArgs(req, '1000:1000');
  const after = (flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
  t.is(args[0], 'run');
  t.is(args.at(-1), req.image);
  t.deepEqual(after('--name'), [containerName('job/7')]);
  t.is(containerName('job/7'), 'edgeml-train-job-7');
  t.deepEqual(after('--label'), [`${TRAINING_LABEL}=hub123`]);
  t.deepEqual(after('--network'), ['none']);
  t.deepEqual(after('--memory'), ['1g']);
  t.deepEqual(after('--cpus'), ['1.5']);
  t.deepEqual(after('--user'), ['1000:1000']);
  t.deepEqual(after('--mount'), [
    'type=bind,source=/data/run/train.jsonl,target=/edgeml/data/train.jsonl,readonly',
    'type=bind,source=/data/run/eval.jsonl,target=/edgeml/data/eval.jsonl,readonly',
    'type=bind,source=/data/run/model,target=/edgeml/model,readonly',
    'type=bind,source=/data/run/output,target=/edgeml/output',
  ]);
  // The contract's variables only: nothing of the hub's environment.
  t.deepEqual(after('--env'), [
    'EDGEML_TRAIN_DATA=/edgeml/data/train.jsonl',
    'EDGEML_EVAL_DATA=/edgeml/data/eval.jsonl',
    'EDGEML_MODEL_DIR=/edgeml/model',
    'EDGEML_OUTPUT_DIR=/edgeml/output',
    'EDGEML_PARAMS={"epochs":3,"note":"a b"}',
  ]);
  t.false(args.includes('-e') || args.includes('--env-file') || args.includes('--privileged'));
});

// --- build queue -----------------------------------------------------------------------------

/** Docker, buildx and the registry, scripted: each buildx call waits for the test to release it. */
class ScriptedSteps implements TrainerBuildSteps {
  readonly calls: string[] = [];
  readonly #gates: Array<() => void> = [];
  buildxError: Error | undefined;

  async checkTools(): Promise<void> {
    this.calls.push('checkTools');
  }

  async writeContext(dir: string): Promise<void> {
    this.calls.push(`writeContext ${dir.split('/').at(-1)}`);
  }

  buildx(req: BuildxRequest): Promise<BuildxResult> {
    this.calls.push(`buildx ${req.platforms.join(',')} ${req.tags.join(',')}`);
    req.onLog('#5 [1/2] FROM base');
    return new Promise((resolve, reject) => {
      const gate = () => (this.buildxError ? reject(this.buildxError) : resolve({ digest: DIGEST('a'), platforms: { [req.platforms[0]!]: DIGEST('a') } }));
      this.#gates.push(gate);
      const abort = () => reject(new EdgemlError(ErrorCodes.HUB_BUILD_CANCELLED, 'cancelled'));
      if (req.signal?.aborted) return abort();
      req.signal?.addEventListener('abort', abort, { once: true });
    });
  }

  async release(): Promise<void> {
    await waitFor('a buildx call to wait', async () => this.#gates.length > 0);
    this.#gates.shift()!();
  }
}

async function setup(t: ExecutionContext, memory = new Memory<HubData>(), steps = new ScriptedSteps()) {
  const dir = await tempDir(t, 'edgeml-trainers-');
  const store = await LowdbHubStore.open(memory, 'memory');
  const blobs = await BlobStore.open(`${dir}/blobs`);
  const logs = await BuildLogs.open(`${dir}/logs`, pino({ level: 'silent' }));
  const builder = new TrainerBuilder({
    trainers: store.trainers,
    blobs,
    logs,
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    steps,
    options: { registry: '127.0.0.1:5000', imagePrefix: 'edgeml', baseImages: { node: 'base-node', python: 'base-python' }, platform: 'linux/amd64', workDir: `${dir}/work` },
  });
  await builder.start();
  t.teardown(() => builder.stop());
  const registry = new TrainerRegistry({ trainers: store.trainers, blobs, builder, clock: systemClock });
  return { builder, registry, steps, store, memory, logs };
}

test('a new trainer version is queued, built for the hub platform only, pushed as trainer-NAME:vN, and waitForImage resolves with its ref', async (t) => {
  const { registry, steps, store } = await setup(t);
  const created = await registry.create('iris', recipe({ env: { LR: '0.1' } }), ACTOR);
  t.like(created, { name: 'iris', version: 1, runtime: 'node', env: { LR: '0.1' }, image: { status: 'queued', platform: 'linux/amd64', attempts: 0 } });
  t.regex(created.digest, /^sha256:[0-9a-f]{64}$/);
  await waitFor('the build to run', async () => (await registry.resolve('iris', { version: 1 })).image.status === 'building');
  const live = await registry.resolve('iris', { version: 1 });
  t.truthy(live.image.progress, 'live progress while it builds');
  const waiting = registry.waitForImage('iris', 1);
  await steps.release();
  const done = await waiting;
  t.like(done.image, { status: 'succeeded', ref: `127.0.0.1:5000/edgeml/trainer-iris@${DIGEST('a')}`, digest: DIGEST('a'), error: null, attempts: 1, progress: null });
  t.deepEqual(steps.calls, ['checkTools', 'writeContext iris-1', 'buildx linux/amd64 127.0.0.1:5000/edgeml/trainer-iris:v1']);
  // The same recipe again is a new version with the same digest; its files are referenced blobs.
  const second = await registry.create('iris', recipe({ env: { LR: '0.1' } }), ACTOR);
  t.is(second.version, 2);
  t.is(second.digest, created.digest);
  t.true((await store.referencedBlobs()).has(created.train.digest));
  await steps.release();
  t.is((await registry.waitForImage('iris', 2)).image.status, 'succeeded');
});

test('a failed build is recorded with its error; waitForImage throws it', async (t) => {
  const { registry, steps } = await setup(t);
  steps.buildxError = new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, 'docker buildx build failed (exit 1): npm ERR!');
  await registry.create('bad', recipe(), ACTOR);
  const waiting = registry.waitForImage('bad', 1);
  await steps.release();
  const err = await t.throwsAsync(waiting);
  t.regex(err!.message, /trainer bad:1 failed to build: docker buildx build failed/);
  t.like((await registry.resolve('bad', { latest: true })).image, { status: 'failed', ref: null, error: { code: ErrorCodes.HUB_BUILD_FAILED } });
});

test('a hub stopped mid-build leaves the image building; the next start queues it again and builds it; too many interruptions fail it', async (t) => {
  const memory = new Memory<HubData>();
  const first = await setup(t, memory);
  await first.registry.create('iris', recipe(), ACTOR);
  await waitFor('the build to run', async () => (await first.registry.resolve('iris', { version: 1 })).image.status === 'building');
  await first.builder.stop();
  t.is((await first.registry.resolve('iris', { version: 1 })).image.status, 'building', 'a stop records no outcome');

  const second = await setup(t, memory);
  await waitFor('the build to run again', async () => (await second.registry.resolve('iris', { version: 1 })).image.attempts === 2);
  await second.steps.release();
  t.like((await second.registry.waitForImage('iris', 1)).image, { status: 'succeeded', attempts: 2 });

  // A build that took the hub down MAX_ATTEMPTS times is failed at the next start, not run again.
  await second.store.trainers.updateImage('iris', 1, (image) => {
    image.status = 'building';
    image.attempts = MAX_ATTEMPTS;
  });
  await second.builder.stop();
  const third = await setup(t, memory);
  const image = (await third.registry.resolve('iris', { version: 1 })).image;
  t.like(image, { status: 'failed', error: { code: ErrorCodes.HUB_BUILD_FAILED } });
  t.regex(image.error!.message, /stopped during each of 3 attempts/);
  t.deepEqual(third.steps.calls, []);
});

test('resolve: unknown trainers and versions are 404 HUB_E_TRAINER_NOT_FOUND; waitForImage ends with its signal', async (t) => {
  const { registry } = await setup(t);
  const missing = await t.throwsAsync(registry.resolve('nope', { latest: true }));
  t.true(missing instanceof EdgemlError && missing.code === ErrorCodes.HUB_TRAINER_NOT_FOUND && missing.httpStatus === 404);
  await registry.create('iris', recipe(), ACTOR);
  await t.throwsAsync(registry.resolve('iris', { version: 9 }), { message: 'trainer iris:9 not found' });
  const controller = new AbortController();
  const waiting = registry.waitForImage('iris', 1, controller.signal);
  controller.abort();
  const err = await t.throwsAsync(waiting);
  t.true(err instanceof EdgemlError && err.code === ErrorCodes.HUB_BUILD_CANCELLED);
});

// --- model layout ----------------------------------------------------------------------------

test('layOutModel: NAME/… exactly as in a scoring image (a single-file model keeps its name, a directory model its tree), readable by the container', async (t) => {
  const dir = await tempDir(t, 'edgeml-layout-');
  const blobs = await BlobStore.open(join(dir, 'blobs'));
  const version = (over: Partial<ModelVersion>): ModelVersion => ({
    name: 'm',
    version: 1,
    kind: 'file',
    digest: DIGEST('0'),
    size: 0,
    files: [],
    framework: 'onnx',
    description: '',
    tags: {},
    aliases: [],
    lineage: { runId: null, dataset: null, metrics: {} },
    createdAt: '2026-11-24T00:00:00.000Z',
    createdBy: ACTOR,
    ...over,
  });
  const file = await blobs.putBytes(Buffer.from('weights'));
  await layOutModel(blobs, version({ name: 'linear', ...file, files: [{ path: 'weights.bin', size: file.size, digest: file.digest }] }), join(dir, 'a'));
  t.deepEqual(await readdir(join(dir, 'a')), ['linear']);
  t.is(await readFile(join(dir, 'a', 'linear', 'weights.bin'), 'utf8'), 'weights');
  t.is((await stat(join(dir, 'a', 'linear', 'weights.bin'))).mode & 0o777, 0o644, 'blobs are 0600; the laid-out copy is world-readable');

  const tar = await blobs.putBytes(await tarOf([{ name: 'iris.onnx', content: 'onnx' }, { name: 'sub/labels.json', content: '[]' }]));
  await layOutModel(blobs, version({ name: 'iris', kind: 'directory', ...tar }), join(dir, 'b'));
  t.is(await readFile(join(dir, 'b', 'iris', 'iris.onnx'), 'utf8'), 'onnx');
  t.is(await readFile(join(dir, 'b', 'iris', 'sub', 'labels.json'), 'utf8'), '[]');
});
