/**
 * The build queue's logic (hub/builds/image-builder.ts) with its side effects replaced by a
 * scripted stand-in for Docker (`ScriptedBuildSteps`): status transitions, one build at a time,
 * cancellation of queued and running builds, smoke-test failures, and a hub stop that leaves the
 * build to be run again at the next start. The real Docker path is in
 * test/integration/image-build.test.ts.
 */
import test, { type ExecutionContext } from 'ava';
import { Memory } from 'lowdb';
import { pino } from 'pino';
import { FINISHED_STATUSES, type SmokeCheck } from '../../shared/api/images.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { systemClock } from '../../shared/clock.js';
import { BuildLogs } from '../../hub/builds/build-log.js';
import type { BuildxRequest, BuildxResult } from '../../hub/builds/buildx.js';
import { MAX_ATTEMPTS } from '../../hub/builds/build-queue.js';
import { ImageBuilder, type BuildSteps } from '../../hub/builds/image-builder.js';
import type { SmokeTestRequest } from '../../hub/builds/smoke-test.js';
import { BlobStore } from '../../hub/store/blob-store.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import { tempDir } from '../helpers/edgeml-process.js';
import { waitFor } from '../helpers/wait.js';

const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ci' };
const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;

/** Docker, buildx and the registry, scripted: each buildx call waits for the test to release it. */
class ScriptedBuildSteps implements BuildSteps {
  readonly calls: string[] = [];
  readonly #gates: Array<() => void> = [];
  smoke: (req: SmokeTestRequest) => SmokeCheck = () => ({ status: 'passed', message: 'ok', output: '' });
  buildxError: Error | undefined;

  async checkTools(): Promise<void> {
    this.calls.push('checkTools');
  }

  async writeContext(dir: string): Promise<void> {
    this.calls.push(`writeContext ${dir.split('/').at(-1)}`);
  }

  buildx(req: BuildxRequest): Promise<BuildxResult> {
    this.calls.push(`buildx ${req.tags.join(',')}`);
    req.onLog('#5 [linux/amd64 1/3] FROM base');
    req.onLog('#5 DONE 0.1s');
    return new Promise((resolve, reject) => {
      const gate = () => {
        if (this.buildxError) return reject(this.buildxError);
        resolve({ digest: DIGEST('a'), platforms: Object.fromEntries(req.platforms.map((p, i) => [p, DIGEST(String(i + 1))])) });
      };
      const abort = () => {
        this.#gates.splice(this.#gates.indexOf(gate), 1);
        reject(new EdgemlError(ErrorCodes.HUB_BUILD_CANCELLED, 'the build was cancelled'));
      };
      this.#gates.push(gate);
      if (req.signal?.aborted) return abort();
      req.signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /** Lets the oldest waiting buildx call finish. */
  async release(): Promise<void> {
    await waitFor('a buildx call to wait', async () => this.#gates.length > 0);
    this.#gates.shift()!();
  }

  async sizes(_repository: string, platforms: Record<string, string>): Promise<Record<string, number>> {
    return Object.fromEntries(Object.keys(platforms).map((p) => [p, 1000]));
  }

  async smokeTest(req: SmokeTestRequest): Promise<SmokeCheck> {
    this.calls.push(`smokeTest ${req.platform}`);
    return this.smoke(req);
  }

  async removeLeftovers(): Promise<{ processes: number; containers: number }> {
    this.calls.push('removeLeftovers');
    return { processes: 0, containers: 0 };
  }
}

async function setup(t: ExecutionContext, memory = new Memory<HubData>(), steps = new ScriptedBuildSteps()) {
  const dir = await tempDir(t, 'edgeml-builder-');
  const store = await LowdbHubStore.open(memory, 'memory');
  if ((await store.manifests.list({})).length === 0) {
    const model = await store.models.addVersion({
      name: 'iris',
      kind: 'file',
      digest: DIGEST('b'),
      size: 10,
      files: [{ path: 'iris.onnx', size: 10, digest: DIGEST('b') }],
      framework: 'onnx',
      description: '',
      tags: {},
      lineage: { runId: null, dataset: null, metrics: {} },
      createdAt: '2026-11-24T00:00:00.000Z',
      createdBy: ACTOR,
    });
    await store.manifests.addVersion({
      name: 'scorer',
      digest: DIGEST('c'),
      runtime: 'node',
      models: [{ name: model.name, version: model.version, digest: model.digest }],
      score: { filename: 'score.js', digest: DIGEST('d'), size: 10 },
      deps: null,
      schema: { input: {}, output: {}, sample: { x: 1 } },
      env: {},
      description: '',
      createdAt: '2026-11-24T00:00:00.000Z',
      createdBy: ACTOR,
    });
  }
  const logs = await BuildLogs.open(`${dir}/logs`, pino({ level: 'silent' }));
  const builder = new ImageBuilder({
    images: store.images,
    manifests: store.manifests,
    models: store.models,
    blobs: await BlobStore.open(`${dir}/blobs`),
    logs,
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    steps,
    options: {
      registry: '127.0.0.1:5000',
      imagePrefix: 'edgeml',
      baseImages: { node: 'base-node', python: 'base-python' },
      smokeTimeoutMs: 1000,
      workDir: `${dir}/work`,
      instance: 'unit-test',
    },
  });
  await builder.start();
  t.teardown(() => builder.stop());
  return { builder, steps, store, logs, memory };
}

const finished = (builder: ImageBuilder, id: number) =>
  waitFor(`image ${id} to finish`, async () => {
    const image = await builder.get(id);
    return FINISHED_STATUSES.includes(image.status) ? image : undefined;
  });

const logText = async (logs: BuildLogs, id: number) => {
  let text = '';
  for await (const chunk of await logs.read(id, { follow: false, pending: false })) text += String(chunk);
  return text;
};

test('a build goes queued → building → testing → succeeded, recording digests, sizes, checks and the log', async (t) => {
  const { builder, steps, logs } = await setup(t);
  const queued = await builder.submit({ manifest: 'scorer', tags: ['stable'] }, ACTOR);
  t.like(queued, { id: 1, status: 'queued', repository: '127.0.0.1:5000/edgeml/scorer', tags: ['v1', 'stable'], ref: null, attempts: 0 });
  t.deepEqual(queued.platforms, { 'linux/amd64': null, 'linux/arm64': null });

  // Once buildx runs, it has reported its first step.
  await waitFor('buildx to run', async () => steps.calls.some((c) => c.startsWith('buildx')));
  const live = await builder.get(1);
  t.is(live.status, 'building');
  t.truthy(live.progress, 'a running build shows progress');
  t.is(live.progress!.stepsTotal, 3);
  await steps.release();
  const done = await finished(builder, 1);
  t.like(done, { status: 'succeeded', error: null, digest: DIGEST('a'), ref: `127.0.0.1:5000/edgeml/scorer@${DIGEST('a')}`, attempts: 1, progress: null });
  t.deepEqual(done.platforms, { 'linux/amd64': DIGEST('1'), 'linux/arm64': DIGEST('2') });
  t.deepEqual(done.sizes, { 'linux/amd64': 1000, 'linux/arm64': 1000 });
  t.deepEqual(Object.keys(done.checks), ['linux/amd64', 'linux/arm64']);
  t.true(done.durationMs! >= 0);
  t.deepEqual(steps.calls, ['removeLeftovers', 'checkTools', 'writeContext 1', 'buildx 127.0.0.1:5000/edgeml/scorer:v1,127.0.0.1:5000/edgeml/scorer:stable', 'smokeTest linux/amd64', 'smokeTest linux/arm64']);
  const text = await logText(logs, 1);
  t.regex(text, /#5 \[linux\/amd64 1\/3\] FROM base/);
  t.regex(text, /edgeml: image 1 succeeded/);
});

test('following the log of a queued build waits for it to start and ends after its outcome is recorded', async (t) => {
  const { builder, steps, logs } = await setup(t);
  await builder.submit({ manifest: 'scorer' }, ACTOR);
  await builder.submit({ manifest: 'scorer' }, ACTOR);
  await builder.submit({ manifest: 'scorer' }, ACTOR);
  const collect = async (id: number) => {
    let text = '';
    for await (const chunk of await logs.read(id, { follow: true, pending: (await builder.get(id)).status === 'queued' })) text += String(chunk);
    return { text, statusAtEnd: (await builder.get(id)).status };
  };
  const second = collect(2);
  const third = collect(3);
  await builder.cancel(3);
  t.deepEqual(await third, { text: '', statusAtEnd: 'cancelled' }, 'a queued build cancelled before it started ends its followers');
  await steps.release();
  await steps.release();
  const { text, statusAtEnd } = await second;
  t.regex(text, /^edgeml: image 2 from manifest scorer:1/);
  t.regex(text, /edgeml: image 2 succeeded\n$/);
  t.is(statusAtEnd, 'succeeded');
});

test('a sample failing on one platform marks the image failed, naming the platform, with its output', async (t) => {
  const { builder, steps } = await setup(t);
  steps.smoke = (req) =>
    req.platform === 'linux/arm64' ? { status: 'failed', message: 'the sample got HTTP 500', output: 'POST /score → 500 boom' } : { status: 'passed', message: 'ok', output: '' };
  await builder.submit({ manifest: 'scorer' }, ACTOR);
  await steps.release();
  const done = await finished(builder, 1);
  t.is(done.status, 'failed');
  t.is(done.error?.code, 'HUB_E_IMAGE_TEST_FAILED');
  t.regex(done.error!.message, /linux\/arm64 \(the sample got HTTP 500\)/);
  t.notRegex(done.error!.message, /linux\/amd64/);
  t.is(done.checks['linux/arm64']?.output, 'POST /score → 500 boom');
  t.truthy(done.ref, 'the pushed image is still recorded');
});

test('a failing buildx marks the image failed with its error; the queue goes on with the next build', async (t) => {
  const { builder, steps } = await setup(t);
  steps.buildxError = new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, 'docker buildx build failed (exit 1): npm ERR');
  await builder.submit({ manifest: 'scorer', platforms: ['linux/amd64'] }, ACTOR);
  await builder.submit({ manifest: 'scorer', platforms: ['linux/amd64'] }, ACTOR);
  t.is((await builder.get(2)).status, 'queued', 'one build at a time');
  await steps.release();
  const first = await finished(builder, 1);
  t.like(first, { status: 'failed', error: { code: 'HUB_E_BUILD_FAILED', message: 'docker buildx build failed (exit 1): npm ERR' }, ref: null });
  steps.buildxError = undefined;
  await steps.release();
  t.is((await finished(builder, 2)).status, 'succeeded');
});

test('cancel: a queued build at once, a running one once buildx has stopped; a finished one is a 409', async (t) => {
  const { builder, steps } = await setup(t);
  await builder.submit({ manifest: 'scorer' }, ACTOR);
  await builder.submit({ manifest: 'scorer' }, ACTOR);
  await builder.submit({ manifest: 'scorer' }, ACTOR);
  t.like(await builder.cancel(2), { status: 'cancelled', error: { code: 'HUB_E_BUILD_CANCELLED', message: 'cancelled before it started' } });

  await waitFor('build 1 in buildx', async () => steps.calls.some((c) => c.startsWith('buildx')));
  const running = await builder.cancel(1);
  t.like(running, { status: 'cancelled', error: { code: 'HUB_E_BUILD_CANCELLED', message: 'cancelled while it was running' } });
  await steps.release();
  t.is((await finished(builder, 3)).status, 'succeeded', 'the queue skipped the cancelled build');
  t.is(steps.calls.filter((c) => c.startsWith('buildx')).length, 2, 'builds 1 and 3 ran buildx, build 2 never started');
  t.is(steps.calls.filter((c) => c.startsWith('smokeTest')).length, 2, 'only build 3 was smoke-tested: build 1 stopped at its cancel');
  const again = await t.throwsAsync(builder.cancel(3), { instanceOf: EdgemlError });
  t.is((again as EdgemlError).code, 'HUB_E_CONFLICT');
});

test('a hub stop mid-build records no outcome; the next start runs the build again (attempt 2)', async (t) => {
  const first = await setup(t);
  await first.builder.submit({ manifest: 'scorer' }, ACTOR);
  await first.builder.submit({ manifest: 'scorer' }, ACTOR);
  await waitFor('build 1 in buildx', async () => first.steps.calls.some((c) => c.startsWith('buildx')));
  await first.builder.stop();
  t.is((await first.store.images.get(1))?.status, 'building', 'left as it was');

  const second = await setup(t, first.memory);
  await waitFor('build 1 queued again and started', async () => (await second.builder.get(1)).status === 'building');
  await second.steps.release();
  t.like(await finished(second.builder, 1), { status: 'succeeded', attempts: 2 });
  await second.steps.release();
  t.like(await finished(second.builder, 2), { status: 'succeeded', attempts: 1 });
});

test('a build interrupted by MAX_ATTEMPTS hub stops is marked failed instead of started again', async (t) => {
  let memory = new Memory<HubData>();
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const run = await setup(t, memory);
    if (attempt === 1) await run.builder.submit({ manifest: 'scorer' }, ACTOR);
    await waitFor(`attempt ${attempt} in buildx`, async () => run.steps.calls.some((c) => c.startsWith('buildx')));
    await run.builder.stop();
    memory = run.memory;
  }
  const last = await setup(t, memory);
  const image = await last.builder.get(1);
  t.like(image, { status: 'failed', attempts: MAX_ATTEMPTS, error: { code: 'HUB_E_BUILD_FAILED' } });
  t.regex(image.error!.message, /stopped during each of 3 attempts/);
  t.false(last.steps.calls.some((c) => c.startsWith('buildx')), 'not started a fourth time');
});

test('a cancel that arrives as the build finishes answers 409 with what happened', async (t) => {
  const { builder, steps } = await setup(t);
  // The smoke test is where the build ends; the cancel lands while it runs and is too late to matter.
  let releaseSmoke!: () => void;
  const smokeGate = new Promise<void>((resolve) => (releaseSmoke = resolve));
  steps.smoke = () => ({ status: 'passed', message: 'ok', output: '' });
  const realSmoke = steps.smokeTest.bind(steps);
  steps.smokeTest = async (req) => {
    await smokeGate;
    return realSmoke(req);
  };
  await builder.submit({ manifest: 'scorer', platforms: ['linux/amd64'] }, ACTOR);
  await steps.release();
  await waitFor('testing', async () => (await builder.get(1)).status === 'testing');
  const cancel = builder.cancel(1);
  releaseSmoke();
  const err = await t.throwsAsync(cancel, { instanceOf: EdgemlError });
  t.is((err as EdgemlError).code, 'HUB_E_CONFLICT');
  t.regex((err as EdgemlError).message, /had already succeeded/);
  t.is((await builder.get(1)).status, 'succeeded');
});

test('an unknown manifest or version is a 404 and queues nothing', async (t) => {
  const { builder, store } = await setup(t);
  const err = await t.throwsAsync(builder.submit({ manifest: 'nope' }, ACTOR), { instanceOf: EdgemlError });
  t.is((err as EdgemlError).code, 'HUB_E_MANIFEST_NOT_FOUND');
  const err2 = await t.throwsAsync(builder.submit({ manifest: 'scorer', version: 7 }, ACTOR), { instanceOf: EdgemlError });
  t.is((err2 as EdgemlError).code, 'HUB_E_MANIFEST_NOT_FOUND');
  t.deepEqual(await store.images.list({}), []);
  const missing = await t.throwsAsync(builder.get(99), { instanceOf: EdgemlError });
  t.is((missing as EdgemlError).httpStatus, 404);
});
