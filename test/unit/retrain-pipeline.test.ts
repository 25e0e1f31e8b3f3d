import test from 'ava';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Memory } from 'lowdb';
import pino from 'pino';
import type { ModelVersion } from '../../shared/api/models.js';
import type { RetrainingJobCreate } from '../../shared/api/retraining.js';
import { BuildLogs } from '../../hub/builds/build-log.js';
import type { ApiKeyAuthority } from '../../hub/auth/api-keys.js';
import { installApiKeyAuth } from '../../hub/http/auth.js';
import { installIdempotency } from '../../hub/http/idempotency.js';
import { retrainingRoutes } from '../../hub/http/retraining.js';
import { createHubFastify } from '../../hub/http/server.js';
import { parseModelRef, parsePinnedRef, parseVersionRef } from '../../hub/registry/model-ref.js';
import type { ApiKeyRecord } from '../../hub/store/store.js';
import type { LabelledRow } from '../../hub/datasets/labelled-data.js';
import { Retraining } from '../../hub/retraining/retraining.js';
import type { DeployedService, RunPorts, TrainingCall } from '../../hub/retraining/run-pipeline.js';
import type { Scheduler } from '../../hub/retraining/scheduler.js';
import { inEvalSplit, splitPoint } from '../../hub/retraining/split.js';
import { MAX_EVAL_ROWS } from '../../shared/api/retraining.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { waitFor } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });
const actor = { keyId: 'k1', keyName: 'admin' };
const T0 = Date.parse('2026-12-01T00:00:00Z');

function rowsOf(n: number): LabelledRow[] {
  return Array.from({ length: n }, (_, i) => ({
    requestId: `req-${i}`,
    time: new Date(T0 + i * 1000).toISOString(),
    device: 'dev-1',
    model: 'linear:1',
    revision: 1,
    input: { x: i },
    output: { y: i },
    label: 2 * i + 1,
  }));
}

class FakeScheduler implements Scheduler {
  readonly tasks = new Map<string, () => void>();
  validate(expression: string): boolean {
    return expression.split(' ').length === 5;
  }
  schedule(expression: string, fire: () => void) {
    this.tasks.set(expression, fire);
    return { stop: () => void this.tasks.delete(expression) };
  }
}

interface Harness {
  store: LowdbHubStore;
  memory: Memory<HubData>;
  retraining: Retraining;
  clock: ManualClock;
  scheduler: FakeScheduler;
  calls: { trainings: TrainingCall[]; trainFiles: string[]; evalFiles: string[]; rollOuts: unknown[]; evaluated: string[]; evalRows: unknown[][]; prepared: number; leftovers: number; labelCounts: string[] };
  options: {
    /** deaf: trains until `release` is called, whatever the signal says. */
    /** flood: prints 9 MiB, then crashes. */
    training: 'ok' | 'crash' | 'flood' | 'hang' | 'deaf';
    release: () => void;
    /** Each image's error on every row it answers (dyadic, so the mean is exact). */
    values: Record<string, number>;
    /** How many of the first eval rows get no answer from the image. */
    unanswered: Record<string, number>;
    /** How many of the first eval rows (after the unanswered ones) the image answers 1000 off. */
    outliers: Record<string, number>;
    rows: LabelledRow[];
    labels: number;
    /** What the service runs; the evaluation's `onEvaluate` may change it. */
    deployment: DeployedService;
    candidateDigest: string;
    onEvaluate: () => void;
  };
}

async function harness(memory = new Memory<HubData>(), clock = new ManualClock(T0)): Promise<Harness> {
  const store = await LowdbHubStore.open(memory, 'memory');
  const dir = await mkdtemp(join(tmpdir(), 'retrain-'));
  const calls: Harness['calls'] = { trainings: [], trainFiles: [], evalFiles: [], rollOuts: [], evaluated: [], evalRows: [], prepared: 0, leftovers: 0, labelCounts: [] };
  const parent = (await store.models.list({ name: 'linear' }))[0];
  const current: ModelVersion =
    parent ??
    (await store.models.addVersion({
      name: 'linear',
      kind: 'directory',
      digest: 'sha256:0',
      size: 1,
      files: [],
      framework: 'custom',
      description: '',
      tags: {},
      lineage: { runId: null, dataset: null, metrics: {} },
      createdAt: new Date(T0).toISOString(),
      createdBy: actor,
    }));
  const options: Harness['options'] = {
    training: 'ok',
    release: () => undefined,
    values: { 'cur@sha256:1': 0.75, 'cand@sha256:2': 0.25 },
    unanswered: {},
    outliers: {},
    rows: rowsOf(40),
    labels: 0,
    deployment: { image: 'cur@sha256:1', build: 3, models: [{ name: 'linear', version: current.version }], rollout: { id: 4 } },
    candidateDigest: 'sha256:c',
    onEvaluate: () => undefined,
  };
  const ports: RunPorts = {
    labelled: {
      async *rows() {
        yield* options.rows;
      },
    },
    datasets: {
      resolve: async (name, version) => ({ name, version, digest: `sha256:${name}` }),
      async *rows() {
        yield { input: { x: 100 }, label: 201 };
      },
    },
    trainer: async (ref) => ({ name: ref.split(':')[0]!, version: 1, image: 'trainer@sha256:t' }),
    deployment: async (service) => (service === 'lin' ? structuredClone(options.deployment) : undefined),
    model: async (name, version) => store.models.resolve(name, { version }),
    registered: async (name, job, run) => {
      const found = (await store.models.list({ name })).find((m) => m.lineage.job === job && m.lineage.run === run);
      return found && { name: found.name, version: found.version };
    },
    layOutModel: async (_model, dir) => writeFile(join(dir, 'model.json'), '{"a":1,"b":0}'),
    runTraining: async (call) => {
      calls.trainFiles.push(await readFile(call.trainData, 'utf8'));
      calls.evalFiles.push(await readFile(call.evalData, 'utf8'));
      call.log('trainer: fitting');
      if (options.training === 'flood') for (let i = 0; i < 9 * 1024; i++) call.log(`trainer: ${'x'.repeat(1024)}`);
      if (options.training === 'crash' || options.training === 'flood') {
        calls.trainings.push(call);
        return { status: 'failed', exitCode: 3, message: 'the trainer exited with code 3' };
      }
      if (options.training === 'hang') {
        // Listening before the test sees the call, so its cancel cannot come first.
        const aborted = new Promise((resolve) => call.signal.addEventListener('abort', resolve, { once: true }));
        calls.trainings.push(call);
        await aborted;
        return { status: 'cancelled', exitCode: null, message: 'cancelled' };
      }
      const released = options.training === 'deaf' && new Promise<void>((resolve) => (options.release = resolve));
      calls.trainings.push(call);
      await released;
      await writeFile(join(call.outputDir, 'model.json'), '{"a":2,"b":1}');
      return { status: 'succeeded', exitCode: 0, message: 'exited 0' };
    },
    registerCandidate: async (name, _dir, lineage, by) =>
      store.models.addVersion({
        name,
        kind: 'directory',
        digest: options.candidateDigest,
        size: 1,
        files: [],
        framework: 'custom',
        description: '',
        tags: {},
        lineage: { ...lineage, dataset: null, metrics: {} },
        createdAt: new Date(T0).toISOString(),
        createdBy: by,
      }),
    addLineageMetrics: (model, metrics) => store.retraining.addLineageMetrics(model, metrics),
    prepare: async () => {
      calls.prepared += 1;
      return { image: { id: 7, ref: 'cand@sha256:2' } };
    },
    evaluate: async (call) => {
      calls.evaluated.push(call.ref);
      calls.evalRows.push(call.rows.map((r) => r.input));
      options.onEvaluate();
      const failed = options.unanswered[call.ref] ?? 0;
      const outliers = failed + (options.outliers[call.ref] ?? 0);
      const predictions = call.rows.map((row, index) => ({ index, predicted: index < failed ? null : (row.label as number) + (index < outliers ? 1000 : options.values[call.ref]!) }));
      return { value: -1, rows: call.rows.length - failed, failed, predictions };
    },
    rollOut: async (service, imageId, rollout) => {
      calls.rollOuts.push({ service, imageId, rollout });
      return { rollout: { id: 12 } };
    },
  };
  const scheduler = new FakeScheduler();
  const retraining = new Retraining({
    repo: store.retraining,
    ports,
    check: { service: async (s) => s === 'lin', trainer: async () => undefined, dataset: async () => undefined },
    countLabels: async (_service, since) => {
      calls.labelCounts.push(since);
      return options.labels;
    },
    removeLeftovers: async () => {
      calls.leftovers += 1;
      return 0;
    },
    logs: await BuildLogs.open(join(dir, 'logs'), logger),
    scheduler,
    clock,
    workDir: join(dir, 'work'),
    instance: 'abcd1234',
    logger,
    labelPollMs: 1000,
  });
  return { store, memory, retraining, clock, scheduler, calls, options };
}

const JOB: RetrainingJobCreate = { name: 'lin-job', service: 'lin', trainer: 'lin-trainer', evalMetric: 'mae', evalOutput: '/y', rollout: { strategy: 'canary' } };

async function settled(h: Harness, id: number) {
  return waitFor(`run ${id} over`, async () => {
    const run = await h.retraining.getRun(id);
    return run.status !== 'queued' && run.status !== 'running' && run;
  });
}

async function logOf(h: Harness, id: number): Promise<string> {
  let text = '';
  for await (const chunk of await h.retraining.log(id, false)) text += String(chunk);
  return text;
}

test('the eval split is stable per request id, and grows with the fraction', (t) => {
  const ids = Array.from({ length: 2000 }, (_, i) => `r${i}`);
  const at20 = ids.filter((id) => inEvalSplit(id, 0.2));
  t.deepEqual(
    ids.filter((id) => inEvalSplit(id, 0.2)),
    at20,
  );
  t.true(at20.length > 300 && at20.length < 500, `${at20.length} of 2000 in a 0.2 split`);
  t.true(at20.every((id) => inEvalSplit(id, 0.5)));
});

test('a better candidate is registered with its lineage and both metrics, then rolled out with the job rollout', async (t) => {
  const h = await harness();
  await h.retraining.start();
  await h.retraining.createJob({ ...JOB, datasets: ['base:1'], params: { lr: 0.1 } }, actor);
  const queued = await h.retraining.runNow('lin-job', actor);
  const run = await settled(h, queued.id);
  t.is(run.status, 'promoted', run.reason ?? '');
  t.is(run.rollout, 12);
  t.deepEqual(run.candidate, { name: 'linear', version: 2 });
  t.deepEqual(run.evaluation, { metric: 'mae', current: 0.75, candidate: 0.25, minImprovement: 0, rows: run.rows!.eval, compared: run.rows!.eval, failed: { current: 0, candidate: 0 } });
  t.deepEqual(h.calls.rollOuts, [{ service: 'lin', imageId: 7, rollout: { strategy: 'canary' } }]);
  t.deepEqual(h.calls.evaluated, ['cur@sha256:1', 'cand@sha256:2']);
  // Every labelled row and the dataset row went to exactly one side, in the export format.
  const train = h.calls.trainFiles[0]!.trim().split('\n').map((l) => JSON.parse(l));
  const evalRows = h.calls.evalFiles[0]!.trim().split('\n').map((l) => JSON.parse(l));
  t.is(train.length + evalRows.length, 41);
  t.is(run.rows!.labels, 40);
  t.deepEqual(Object.keys(train[0]).sort(), ['device', 'input', 'label', 'model', 'output', 'requestId', 'time']);
  t.true(evalRows.every((r) => inEvalSplit(r.requestId, 0.2)) && train.every((r) => !inEvalSplit(r.requestId, 0.2)));
  t.deepEqual(h.calls.trainings[0]!.params, { lr: 0.1 });
  t.is(h.calls.trainings[0]!.timeoutMs, 30 * 60 * 1000);
  const model = await h.store.models.resolve('linear', { version: 2 });
  t.like(model.lineage, {
    parent: { name: 'linear', version: 1 },
    datasets: [{ name: 'base', version: 1, digest: 'sha256:base' }],
    labels: { since: new Date(T0).toISOString(), count: 40 },
    trainer: { name: 'lin-trainer', version: 1, image: 'trainer@sha256:t' },
    job: 'lin-job',
    run: queued.id,
    metrics: { mae: 0.25, 'current.mae': 0.75 },
  });
  const log = await logOf(h, queued.id);
  t.regex(log, /trainer: fitting/);
  t.regex(log, /promoted: mae 0\.75 → 0\.25; rollout 12/);
  t.is((await h.retraining.getJob('lin-job')).lastRun?.status, 'promoted');
  await h.retraining.close();
});

test('a candidate that is not better by --min-improvement is registered, rejected with the numbers, and not rolled out', async (t) => {
  const h = await harness();
  h.options.values = { 'cur@sha256:1': 0.5, 'cand@sha256:2': 0.375 };
  await h.retraining.start();
  await h.retraining.createJob({ ...JOB, minImprovement: 0.25 }, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'rejected');
  t.is(run.reason, "the candidate's mae 0.375 does not beat the current model's 0.5 by 0.25");
  t.deepEqual(h.calls.rollOuts, []);
  t.like((await h.store.models.resolve('linear', { version: 2 })).lineage.metrics, { mae: 0.375, 'current.mae': 0.5 });
  await h.retraining.close();
});

test('a candidate that answers fewer eval rows than the current model is rejected, whatever its metric on the rest', async (t) => {
  const h = await harness();
  h.options.unanswered = { 'cand@sha256:2': 2 };
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'rejected');
  t.regex(run.reason!, /^the candidate answered 2 fewer eval rows than the current model \(2 of \d+ without an answer\)$/);
  t.deepEqual(run.evaluation!.failed, { current: 0, candidate: 2 });
  t.deepEqual(h.calls.rollOuts, []);
  await h.retraining.close();
});

test('a crashing trainer fails the run with its log; nothing is registered or rolled out', async (t) => {
  const h = await harness();
  h.options.training = 'crash';
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'failed');
  t.is(run.reason, 'training failed: the trainer exited with code 3');
  t.is(run.candidate, null);
  t.is((await h.store.models.list({ name: 'linear' })).length, 1);
  t.deepEqual(h.calls.rollOuts, []);
  t.regex(await logOf(h, run.id), /trainer: fitting[\s\S]*edgeml: failed: training failed/);
  await h.retraining.close();
});

test('a trainer printing past the log limit cannot hide how the run ended', async (t) => {
  const h = await harness();
  h.options.training = 'flood';
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'failed');
  const log = await logOf(h, run.id);
  t.true(log.length < 9 * 1024 * 1024, `${log.length} bytes`);
  t.regex(log, /edgeml: the log is cut here[\s\S]*\nedgeml: failed: training failed: the trainer exited with code 3\n$/);
  await h.retraining.close();
});

test('no labelled rows: the run fails saying so, before any training', async (t) => {
  const h = await harness();
  h.options.rows = [];
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'failed');
  t.regex(run.reason!, /no rows to train on/);
  t.is(h.calls.trainings.length, 0);
  await h.retraining.close();
});

test('cancel stops a run in training (the trainer sees the abort); a second manual run while one is active is refused', async (t) => {
  const h = await harness();
  h.options.training = 'hang';
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const queued = await h.retraining.runNow('lin-job', actor);
  await waitFor('training', () => h.calls.trainings.length === 1);
  const conflict = await t.throwsAsync(h.retraining.runNow('lin-job', actor));
  t.is((conflict as { code?: string }).code, 'HUB_E_CONFLICT');
  const cancelled = await h.retraining.cancel(queued.id, actor);
  t.is(cancelled.status, 'cancelled');
  t.is(cancelled.reason, 'cancelled by request');
  t.true(h.calls.trainings[0]!.signal.aborted);
  await h.retraining.close();
});

test('a run the hub was in the middle of is failed at the next start, leftovers removed; a queued run still runs', async (t) => {
  const memory = new Memory<HubData>();
  const first = await harness(memory);
  await first.retraining.createJob(JOB, actor);
  await first.retraining.createJob({ ...JOB, name: 'other' }, actor);
  // As a kill -9 leaves it: one run marked running, one queued, nothing in this process any more.
  const running = await first.store.retraining.addRun({ ...(await stubRun('lin-job')), status: 'running', stage: 'training' }, new Date(T0).toISOString());
  const queued = await first.store.retraining.addRun(await stubRun('other'), new Date(T0).toISOString());
  const second = await harness(memory);
  await second.retraining.start();
  t.is(second.calls.leftovers, 1);
  const failed = await second.retraining.getRun(running.id);
  t.is(failed.status, 'failed');
  t.is(failed.reason, 'the hub stopped during the run');
  t.truthy(failed.finishedAt);
  t.is((await settled(second, queued.id)).status, 'promoted');
  await second.retraining.close();
});

test('a candidate with the current model\'s files is registered and rejected before any image build', async (t) => {
  const h = await harness();
  h.options.candidateDigest = 'sha256:0';
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'rejected');
  t.is(run.reason, "the candidate has the current model's files (sha256:0)");
  t.deepEqual(run.candidate, { name: 'linear', version: 2 });
  t.is(h.calls.prepared, 0);
  t.deepEqual(h.calls.rollOuts, []);
  await h.retraining.close();
});

test('a service updated while the run evaluated is not replaced: the run ends rejected saying what changed', async (t) => {
  const h = await harness();
  h.options.onEvaluate = () => {
    h.options.deployment = { ...h.options.deployment, image: 'other@sha256:9', build: 5 };
  };
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'rejected');
  t.is(run.reason, 'the service changed during the run: it ran cur@sha256:1 (build 3), now other@sha256:9 (build 5)');
  t.deepEqual(h.calls.rollOuts, []);
  await h.retraining.close();
});

test('runs started at once for one job: one is stored, the other refused with 409', async (t) => {
  const h = await harness();
  h.options.training = 'hang';
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const both = await Promise.allSettled([h.retraining.runNow('lin-job', actor), h.retraining.runNow('lin-job', actor)]);
  t.deepEqual(both.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  const refused = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.is(refused.reason.code, 'HUB_E_CONFLICT');
  t.is((await h.retraining.listRuns('lin-job')).length, 1);
  await h.retraining.close();
});

test('at start, a run stopped while rolling out the image the service now runs ends promoted with that rollout', async (t) => {
  const memory = new Memory<HubData>();
  const first = await harness(memory);
  await first.retraining.createJob(JOB, actor);
  await first.retraining.createJob({ ...JOB, name: 'other' }, actor);
  const stage = { status: 'running' as const, stage: 'rolling-out' as const, current: { name: 'linear', version: 1 }, image: 3 };
  const rolledOut = await first.store.retraining.addRun({ ...(await stubRun('lin-job')), ...stage, candidate: { name: 'linear', version: 2 } }, new Date(T0).toISOString());
  // Not what the service runs (build 3 runs): the rollout never started.
  const notRolledOut = await first.store.retraining.addRun({ ...(await stubRun('other')), ...stage, image: 8 }, new Date(T0).toISOString());
  const second = await harness(memory);
  await second.retraining.start();
  t.like(await second.retraining.getRun(rolledOut.id), { status: 'promoted', rollout: 4, stage: null, reason: null, candidate: { name: 'linear', version: 2 } });
  t.like(await second.retraining.getRun(notRolledOut.id), { status: 'failed', reason: 'the hub stopped during the run' });
  await second.retraining.close();
});

test('at start, a run stopped right after registering its candidate names it (found by its lineage)', async (t) => {
  const memory = new Memory<HubData>();
  const first = await harness(memory);
  await first.retraining.createJob(JOB, actor);
  const run = await first.store.retraining.addRun({ ...(await stubRun('lin-job')), status: 'running', stage: 'registering', current: { name: 'linear', version: 1 } }, new Date(T0).toISOString());
  await first.store.models.addVersion({
    name: 'linear',
    kind: 'directory',
    digest: 'sha256:c',
    size: 1,
    files: [],
    framework: 'custom',
    description: '',
    tags: {},
    lineage: { runId: null, dataset: null, metrics: {}, job: 'lin-job', run: run.id },
    createdAt: new Date(T0).toISOString(),
    createdBy: actor,
  });
  const second = await harness(memory);
  await second.retraining.start();
  t.like(await second.retraining.getRun(run.id), { status: 'failed', candidate: { name: 'linear', version: 2 } });
  await second.retraining.close();
});

test('both models are measured on the rows both answered: rows only the candidate answered do not count', async (t) => {
  const h = await harness();
  // The current model fails the first 2 rows; the candidate answers them badly, the rest better.
  h.options.unanswered = { 'cur@sha256:1': 2 };
  h.options.outliers = { 'cand@sha256:2': 2 };
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'promoted', run.reason ?? '');
  t.like(run.evaluation, { current: 0.75, candidate: 0.25, rows: run.rows!.eval, compared: run.rows!.eval - 2, failed: { current: 2, candidate: 0 } });
  await h.retraining.close();
});

test(`at most ${MAX_EVAL_ROWS} eval rows are scored, the same ones by both images`, async (t) => {
  const h = await harness();
  h.options.rows = rowsOf(12_000);
  await h.retraining.start();
  await h.retraining.createJob({ ...JOB, evalFraction: 0.9 }, actor);
  const run = await settled(h, (await h.retraining.runNow('lin-job', actor)).id);
  t.is(run.status, 'promoted', run.reason ?? '');
  t.true(run.rows!.eval > MAX_EVAL_ROWS, `${run.rows!.eval} eval rows`);
  t.is(h.calls.evalFiles[0]!.trim().split('\n').length, run.rows!.eval);
  t.is(run.evaluation!.rows, MAX_EVAL_ROWS);
  t.is(h.calls.evalRows[0]!.length, MAX_EVAL_ROWS);
  t.deepEqual(h.calls.evalRows[1], h.calls.evalRows[0]);
  // The rows of lowest split point: the same from run to run.
  const points = h.calls.evalRows[0]!.map((input) => splitPoint(`req-${(input as { x: number }).x}`));
  const highest = Math.max(...points);
  t.is(h.options.rows.filter((r) => splitPoint(r.requestId) <= highest).length, MAX_EVAL_ROWS);
  await h.retraining.close();
});

test('a cancel the running step does not hear within the wait comes back running; the run ends cancelled when the step stops', async (t) => {
  const h = await harness();
  h.options.training = 'deaf';
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const queued = await h.retraining.runNow('lin-job', actor);
  await waitFor('training', () => h.calls.trainings.length === 1 && h.clock.pending() === 1);
  const cancelling = h.retraining.cancel(queued.id, actor);
  await waitFor('the cancel waiting', () => h.clock.pending() === 2);
  h.clock.advance(10_000);
  t.like(await cancelling, { status: 'running', stage: 'training' });
  h.options.release();
  t.like(await settled(h, queued.id), { status: 'cancelled', reason: 'cancelled by request' });
  t.deepEqual(h.calls.rollOuts, []);
  await h.retraining.close();
});

async function stubRun(job: string) {
  return {
    job,
    service: 'lin',
    trigger: 'manual' as const,
    status: 'queued' as const,
    stage: null,
    rows: null,
    labels: null,
    current: null,
    candidate: null,
    image: null,
    evaluation: null,
    rollout: null,
    reason: null,
    createdAt: new Date(T0).toISOString(),
    startedAt: null,
    finishedAt: null,
    createdBy: actor,
  };
}

test('a schedule fires a run; a bad cron expression is refused', async (t) => {
  const h = await harness();
  await h.retraining.start();
  const bad = await t.throwsAsync(h.retraining.createJob({ ...JOB, schedule: 'every minute' }, actor));
  t.is((bad as { code?: string }).code, 'HUB_E_INVALID_REQUEST');
  await h.retraining.createJob({ ...JOB, schedule: '* * * * *' }, actor);
  h.scheduler.tasks.get('* * * * *')!();
  const [run] = await waitFor('a scheduled run', async () => {
    const runs = await h.retraining.listRuns('lin-job');
    return runs.length > 0 && runs;
  });
  t.is(run!.trigger, 'schedule');
  t.is(run!.createdBy, null);
  t.is((await settled(h, run!.id)).status, 'promoted');
  await h.retraining.close();
  t.is(h.scheduler.tasks.size, 0);
});

test('--min-new-labels: a poll below the threshold starts nothing; at it, a run counted from the last one', async (t) => {
  const h = await harness();
  await h.retraining.start();
  await h.retraining.createJob({ ...JOB, minNewLabels: 5 }, actor);
  h.options.labels = 4;
  h.clock.advance(1000);
  await waitFor('a poll', () => h.calls.labelCounts.length >= 1);
  t.deepEqual(await h.retraining.listRuns('lin-job'), []);
  h.options.labels = 5;
  h.clock.ms += 60_000;
  await waitFor('the next poll armed', () => h.clock.pending() === 1);
  h.clock.advance(1000);
  const [run] = await waitFor('a labels run', async () => {
    const runs = await h.retraining.listRuns('lin-job');
    return runs.length > 0 && runs;
  });
  t.is(run!.trigger, 'labels');
  await settled(h, run!.id);
  // The next count starts at that run.
  t.is((await h.retraining.getJob('lin-job')).labelsSince, run!.createdAt);
  t.is(run!.createdAt, new Date(T0 + 62_000).toISOString());
  await h.retraining.close();
});

test('limits, the eval pointer and the rollout are checked when the job is created', async (t) => {
  const h = await harness();
  const refused = async (body: Partial<RetrainingJobCreate>) => ((await t.throwsAsync(h.retraining.createJob({ ...JOB, ...body }, actor))) as Error).message;
  t.is(await refused({ timeout: '8d' }), 'body.timeout: must be above 0 and at most 7d, not 8d');
  t.is(await refused({ timeout: '0s' }), 'body.timeout: must be above 0 and at most 7d, not 0s');
  t.regex(await refused({ memory: '1m' }), /^body\.memory: must be at least 6m/);
  t.regex(await refused({ evalOutput: '/a~2' }), /^body\.evalOutput: .*~ must be followed by 0 or 1/);
  t.regex(await refused({ rollout: { soak: '31d' } }), /^body\.rollout\.soak: must be at most 30d/);
  t.deepEqual(await h.retraining.listJobs(), []);
});

test('a job for a service that is not deployed is refused; unknown job and run are 404', async (t) => {
  const h = await harness();
  const err = await t.throwsAsync(h.retraining.createJob({ ...JOB, service: 'nope' }, actor));
  t.is((err as { code?: string }).code, 'HUB_E_DEPLOYMENT_NOT_FOUND');
  t.is(((await t.throwsAsync(h.retraining.getJob('x'))) as { code?: string }).code, 'HUB_E_RETRAINING_JOB_NOT_FOUND');
  t.is(((await t.throwsAsync(h.retraining.getRun(99))) as { code?: string }).code, 'HUB_E_RETRAINING_RUN_NOT_FOUND');
  t.is(((await t.throwsAsync(h.retraining.createJob(JOB, actor).then(() => h.retraining.createJob(JOB, actor)))) as { code?: string }).code, 'HUB_E_CONFLICT');
});

/** The REST routes over `h`; every request authenticated as one key, the scopes each asked for noted. */
async function routesOf(h: Harness, scopes: string[] = []) {
  const app = createHubFastify(logger);
  const key = { id: 'k1', name: 'admin' } as ApiKeyRecord;
  installApiKeyAuth(app, { authenticate: async () => key, authorize: (_key: unknown, scope: string) => void scopes.push(scope) } as unknown as ApiKeyAuthority);
  installIdempotency(app, Buffer.alloc(32, 1));
  await app.register(retrainingRoutes, { retraining: h.retraining });
  return app;
}

test('a run log needs the deploy scope (users\' data), a run the read scope', async (t) => {
  const h = await harness();
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  const run = await h.retraining.runNow('lin-job', actor);
  await settled(h, run.id);
  const scopes: string[] = [];
  const app = await routesOf(h, scopes);
  t.is((await app.inject({ method: 'GET', url: `/api/v1/retraining/runs/${run.id}` })).statusCode, 200);
  const log = await app.inject({ method: 'GET', url: `/api/v1/retraining/runs/${run.id}/log` });
  t.is(log.statusCode, 200);
  t.deepEqual(scopes, ['read', 'deploy']);
  await app.close();
  await h.retraining.close();
});

test('a retried POST under the same Idempotency-Key answers the job, and the run, the first attempt stored', async (t) => {
  const h = await harness();
  h.options.training = 'hang';
  await h.retraining.start();
  const app = await routesOf(h);
  const post = (url: string, idempotencyKey: string, body?: unknown) =>
    app.inject({ method: 'POST', url, headers: { 'idempotency-key': idempotencyKey, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { payload: JSON.stringify(body) } : {}) });

  const created = await post('/api/v1/retraining/jobs', 'job-1', JOB);
  t.is(created.statusCode, 201);
  const again = await post('/api/v1/retraining/jobs', 'job-1', JOB);
  t.is(again.statusCode, 201);
  t.is(again.headers['idempotent-replayed'], 'true');
  t.is(again.json<{ name: string }>().name, 'lin-job');
  t.is((await post('/api/v1/retraining/jobs', 'job-2', JOB)).statusCode, 409);

  const started = await post('/api/v1/retraining/jobs/lin-job/runs', 'run-1');
  t.is(started.statusCode, 202);
  const retried = await post('/api/v1/retraining/jobs/lin-job/runs', 'run-1');
  t.is(retried.statusCode, 202);
  t.is(retried.headers['idempotent-replayed'], 'true');
  t.is(retried.json<{ id: number }>().id, started.json<{ id: number }>().id);
  t.is((await post('/api/v1/retraining/jobs/lin-job/runs', 'run-2')).statusCode, 409);
  t.is((await h.retraining.listRuns('lin-job')).length, 1);

  const id = started.json<{ id: number }>().id;
  await waitFor('training', () => h.calls.trainings.length === 1);
  const cancelled = await post(`/api/v1/retraining/runs/${id}/cancel`, 'cancel-1');
  t.is(cancelled.statusCode, 200);
  t.is(cancelled.json<{ status: string }>().status, 'cancelled');
  const cancelRetried = await post(`/api/v1/retraining/runs/${id}/cancel`, 'cancel-1');
  t.is(cancelRetried.statusCode, 200);
  t.is(cancelRetried.headers['idempotent-replayed'], 'true');
  t.deepEqual(cancelRetried.json<{ status: string; cancelledBy: unknown }>().cancelledBy, { keyId: 'k1', keyName: 'admin' });
  t.is((await post(`/api/v1/retraining/runs/${id}/cancel`, 'cancel-2')).statusCode, 409);
  await app.close();
  await h.retraining.close();
});

test('a run queued behind another exports up to its queueing, where the next label count starts, not up to its start', async (t) => {
  const h = await harness();
  h.options.training = 'hang';
  await h.retraining.start();
  await h.retraining.createJob(JOB, actor);
  await h.retraining.createJob({ ...JOB, name: 'lin-job-2' }, actor);
  const first = await h.retraining.runNow('lin-job', actor);
  await waitFor('training', () => h.calls.trainings.length === 1);
  const queued = await h.retraining.runNow('lin-job-2', actor);
  h.clock.ms += 60_000;
  await h.retraining.cancel(first.id, actor);
  await waitFor('the queued run training', () => h.calls.trainings.length === 2);
  const run = await h.retraining.getRun(queued.id);
  t.not(run.startedAt, run.createdAt);
  t.is(run.labels?.until, run.createdAt);
  t.is((await h.retraining.getJob('lin-job-2')).labelsSince, run.createdAt);
  await h.retraining.close();
});

test('trainer and dataset refs: a name alone is the latest version, NAME:V that version; a dataset needs its version', (t) => {
  t.deepEqual(parseVersionRef('lin-trainer'), { name: 'lin-trainer', selector: { latest: true } });
  t.deepEqual(parseVersionRef('lin-trainer:12'), { name: 'lin-trainer', selector: { version: 12 } });
  t.deepEqual(parsePinnedRef('linear-base:3'), { name: 'linear-base', version: 3 });
  t.is(t.throws(() => parsePinnedRef('linear-base'))?.message, '"linear-base": expected NAME:VERSION');
  t.deepEqual(parseModelRef('iris:2'), { name: 'iris', selector: { version: 2 } });
  t.deepEqual(parseModelRef('iris@prod'), { name: 'iris', selector: { alias: 'prod' } });
});
