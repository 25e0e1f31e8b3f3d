import test from 'ava';
import { Memory } from 'lowdb';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import type { RetrainingJobRecord, RetrainingRunRecord } from '../../hub/store/store.js';

const actor = { keyId: 'k1', keyName: 'admin' };
const AT = '2026-12-01T00:00:00.000Z';

const job = (name: string): RetrainingJobRecord => ({
  name,
  service: 'lin',
  trainer: 'fit',
  datasets: [],
  schedule: null,
  minNewLabels: 10,
  evalMetric: 'mae',
  evalOutput: '/y',
  evalFraction: 0.2,
  minImprovement: 0,
  params: {},
  model: null,
  timeout: '30m',
  memory: '1g',
  cpus: 1,
  rollout: null,
  labelsSince: AT,
  createdAt: AT,
  createdBy: actor,
});

const run = (jobName: string): Omit<RetrainingRunRecord, 'id'> => ({
  job: jobName,
  service: 'lin',
  trigger: 'labels',
  status: 'queued',
  stage: null,
  rows: null,
  labels: null,
  current: null,
  candidate: null,
  image: null,
  evaluation: null,
  rollout: null,
  reason: null,
  createdAt: AT,
  startedAt: null,
  finishedAt: null,
  createdBy: null,
});

test('a store written before retraining existed reads as no jobs and no runs', async (t) => {
  const store = await LowdbHubStore.open(new Memory<HubData>(), 'memory');
  t.deepEqual(await store.retraining.listJobs(), []);
  t.deepEqual(await store.retraining.listRuns({}), []);
  t.is(await store.retraining.getJob('x'), undefined);
  t.is(await store.retraining.getRun(1), undefined);
});

test('jobs and runs persist; a run moves its job label window in the same write; runs list newest first and by activity', async (t) => {
  const memory = new Memory<HubData>();
  const store = await LowdbHubStore.open(memory, 'memory');
  await store.retraining.addJob(job('a'));
  await store.retraining.addJob(job('b'));
  t.is(((await t.throwsAsync(store.retraining.addJob(job('a')))) as { code?: string }).code, 'HUB_E_CONFLICT');
  const first = await store.retraining.addRun(run('a'), '2026-12-02T00:00:00.000Z');
  const second = await store.retraining.addRun(run('b'), '2026-12-03T00:00:00.000Z');
  t.deepEqual([first.id, second.id], [1, 2]);
  t.is(((await t.throwsAsync(store.retraining.addRun(run('nope'), AT))) as { code?: string }).code, 'HUB_E_RETRAINING_JOB_NOT_FOUND');
  await store.retraining.updateRun(1, (r) => {
    r.status = 'failed';
  });
  t.is(((await t.throwsAsync(store.retraining.updateRun(9, () => undefined))) as { code?: string }).code, 'HUB_E_RETRAINING_RUN_NOT_FOUND');

  const reopened = await LowdbHubStore.open(memory, 'memory');
  t.deepEqual((await reopened.retraining.listJobs()).map((j) => [j.name, j.labelsSince]), [
    ['a', '2026-12-02T00:00:00.000Z'],
    ['b', '2026-12-03T00:00:00.000Z'],
  ]);
  t.deepEqual((await reopened.retraining.listRuns({})).map((r) => r.id), [2, 1]);
  t.deepEqual((await reopened.retraining.listRuns({ active: true })).map((r) => r.id), [2]);
  t.deepEqual((await reopened.retraining.listRuns({ job: 'a' })).map((r) => r.status), ['failed']);
});

test("addLineageMetrics adds to a model version's lineage metrics and keeps the rest", async (t) => {
  const store = await LowdbHubStore.open(new Memory<HubData>(), 'memory');
  const model = await store.models.addVersion({
    name: 'linear',
    kind: 'file',
    digest: 'sha256:0',
    size: 1,
    files: [],
    framework: 'custom',
    description: '',
    tags: {},
    lineage: { runId: 'j/1', dataset: null, metrics: { loss: 1 }, job: 'j', run: 1 },
    createdAt: AT,
    createdBy: actor,
  });
  await store.retraining.addLineageMetrics(model, { mae: 0.1, 'current.mae': 0.9 });
  t.deepEqual((await store.models.resolve('linear', { version: 1 })).lineage, { runId: 'j/1', dataset: null, metrics: { loss: 1, mae: 0.1, 'current.mae': 0.9 }, job: 'j', run: 1 });
  t.is(((await t.throwsAsync(store.retraining.addLineageMetrics({ name: 'linear', version: 2 }, {}))) as { code?: string }).code, 'HUB_E_MODEL_NOT_FOUND');
});
