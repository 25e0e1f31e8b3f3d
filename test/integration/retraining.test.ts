/**
 * Retraining end to end with a real hub, a real agent and real Docker, on examples/linear: the
 * deployed model answers y = x, clients label with the true y = 2x + 1 (by request id, captured
 * at 100 %, and some inline). Past --min-new-labels the job trains, evaluates both images (the
 * candidate's MAE is lower), registers linear:2 with its lineage and both metrics, builds, rolls
 * out, and the same gateway URL and key answer with the new model. Then, on the same service:
 * a trainer run producing a worse model is registered and rejected with nothing rolled out, and a
 * crashing run and one past its --timeout end failed with their logs, the service untouched.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import type { Deployment, DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import type { ModelVersion } from '../../shared/api/models.js';
import type { RetrainingJob, RetrainingRun } from '../../shared/api/retraining.js';
import type { Rollout } from '../../shared/api/rollouts.js';
import { hubInstanceId } from '../../hub/builds/image-builder.js';
import { TRAINING_LABEL } from '../../hub/training/training-runner.js';
import { assertNoConsoleErrors, newPortalPage, openBrowser, screenshot, signIn } from '../helpers/browser.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api, enrollDevice, servingRevision } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/linear/', import.meta.url));
const LONG = 20 * 60_000;
const LABELS = 40;

async function containerIds(filter: string): Promise<string[]> {
  return (await exec('docker', ['ps', '-aq', '--no-trunc', '--filter', filter])).stdout.split('\n').filter(Boolean);
}

async function score(gateway: string, key: string, x: number): Promise<{ y: number; requestId: string }> {
  const res = await request(`${gateway}/v1/services/lin/score`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ x }) });
  const body = (await res.body.json()) as { y: number };
  if (res.statusCode !== 200) throw new Error(`score ${x}: HTTP ${res.statusCode} ${JSON.stringify(body)}`);
  return { y: body.y, requestId: String(res.headers['x-request-id']) };
}

async function feedback(gateway: string, key: string, body: unknown): Promise<number> {
  const res = await request(`${gateway}/v1/services/lin/feedback`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
  await res.body.dump();
  return res.statusCode;
}

async function runEnded(hub: HubProcess, id: number): Promise<RetrainingRun> {
  return waitFor(
    `retraining run ${id} over`,
    async () => {
      const { body } = await api<RetrainingRun>(hub, 'GET', `/api/v1/retraining/runs/${id}`, { key: hub.adminKey });
      return body.status !== 'queued' && body.status !== 'running' && body;
    },
    LONG,
    500,
  );
}

async function createJob(t: ExecutionContext, cli: ReturnType<typeof cliFor>, name: string, extra: string[]): Promise<RetrainingJob> {
  return jsonOf<RetrainingJob>(t, await cli('retrain', 'create', name, '--service', 'lin', '--trainer', 'linear-fit', '--eval-metric', 'mae', '--eval-output', '/y', ...extra, '--json'));
}

test('feedback → job → evaluation → rollout; a worse candidate is rejected; a crash and a timeout fail, the service untouched', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const device = `lin-${randomBytes(3).toString('hex')}`;
  t.teardown(async () => {
    for (const c of await containerIds(`label=io.edgeml.device=${device}`)) await exec('docker', ['rm', '-f', c]);
    await deleteFromRegistry(registry, `${prefix}/linear-scorer`, 'v1').catch(() => undefined);
  });

  // The service: examples/linear with the model y = x, every request captured.
  jsonOf(t, await cli('model', 'register', 'linear', `${EXAMPLE}model/model.json`, '--json'));
  jsonOf(t, await cli('manifest', 'create', 'linear-scorer', '--runtime', 'node', '--score', `${EXAMPLE}score.js`, '--model', 'linear:1', '--schema', `${EXAMPLE}schema.json`, '--json'));
  const base = jsonOf<Image>(t, await cli('image', 'build', 'linear-scorer', '--platform', 'linux/amd64', '--json'));
  t.is(base.status, 'succeeded');
  await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId: device, token: await enrollDevice(hub, device, { site: device }), extraArgs: ['--platform', 'linux/amd64', '--telemetry-interval', '1s'] });
  const created = jsonOf<DeploymentCreated>(t, await cli('deploy', 'lin', '--build', String(base.id), '--target', `site=${device}`, '--capture-rate', '1', '--json'));
  t.is(jsonOf<Rollout>(t, await cli('rollout', 'status', String(created.rollout.id), '--watch', '--json')).phase, 'succeeded');
  const gateway = (await servingRevision(hub, device, 1, LONG)).gateway!;
  t.is((await score(gateway, created.key, 10)).y, 10);

  // The trainer (its image is built once for every job below).
  const trainer = await api<{ version: number }>(hub, 'POST', '/api/v1/trainers/linear-fit/versions', {
    key: hub.adminKey,
    json: { runtime: 'node', train: { filename: 'train.js', content: await readFile(`${EXAMPLE}trainer/train.js`, 'utf8') } },
  });
  t.is(trainer.status, 201, JSON.stringify(trainer.body));

  const job = await createJob(t, cli, 'lin-job', ['--min-new-labels', String(LABELS), '--strategy', 'canary', '--canary', '1', '--soak', '2s']);
  t.like(job, { name: 'lin-job', minNewLabels: LABELS, evalMetric: 'mae', evalOutput: '/y', lastRun: null });

  // Clients score and label with the truth, y = 2x + 1: most by request id, a few inline.
  for (let x = 0; x < LABELS; x++) {
    if (x % 8 === 7) {
      t.is(await feedback(gateway, created.key, { input: { x }, label: 2 * x + 1 }), 202);
      continue;
    }
    const answer = await score(gateway, created.key, x);
    // The capture reaches the gateway's index as it is sampled: a label right after is accepted.
    t.is(await feedback(gateway, created.key, { requestId: answer.requestId, label: 2 * x + 1 }), 202);
  }

  const first = await waitFor(
    'a run started by the new labels',
    async () => (await api<RetrainingJob>(hub, 'GET', '/api/v1/retraining/jobs/lin-job', { key: hub.adminKey })).body.lastRun ?? undefined,
    LONG,
    500,
  );
  t.is(first.trigger, 'labels');
  const promoted = await runEnded(hub, first.id);
  const log = await cli('retrain', 'logs', 'lin-job', String(first.id));
  t.is(promoted.status, 'promoted', `${promoted.reason}\n${log.stdout}`);
  t.regex(log.stdout, /fitted on \d+ rows: a = 2(\.0+\d*)?, b = 1/);
  const evaluation = promoted.evaluation!;
  t.true(evaluation.candidate < evaluation.current, JSON.stringify(evaluation));
  t.true(evaluation.candidate < 0.001, `the fit is exact: mae ${evaluation.candidate}`);
  t.deepEqual(promoted.candidate, { name: 'linear', version: 2 });
  t.true(promoted.rows!.labels >= LABELS && promoted.rows!.eval > 0 && promoted.rows!.train > 0, JSON.stringify(promoted.rows));

  const model = jsonOf<ModelVersion>(t, await cli('model', 'show', 'linear:2', '--json'));
  t.like(model.lineage, { parent: { name: 'linear', version: 1 }, job: 'lin-job', run: first.id, metrics: { mae: evaluation.candidate, 'current.mae': evaluation.current } });
  t.is(model.lineage.labels!.count, promoted.rows!.labels);
  t.like(model.lineage.trainer, { name: 'linear-fit', version: 1 });
  t.regex(model.lineage.trainer!.image, /@sha256:[0-9a-f]{64}$/);
  t.deepEqual(model.lineage.datasets, []);

  const rollout = jsonOf<Rollout>(t, await cli('rollout', 'status', String(promoted.rollout), '--watch', '--json'));
  t.is(rollout.phase, 'succeeded', rollout.reason ?? '');
  const deployment = jsonOf<Deployment>(t, await cli('service', 'show', 'lin', '--json'));
  t.deepEqual(deployment.models.map((m) => `${m.name}:${m.version}`), ['linear:2']);
  await servingRevision(hub, device, deployment.revision, LONG);
  // Same URL, same key, the new model's value.
  t.is((await score(gateway, created.key, 10)).y, 21);

  // A worse candidate: registered with both numbers, rejected, nothing rolled out.
  await createJob(t, cli, 'lin-worse', ['--params', '{"mode":"worse"}']);
  const worse = await cli('retrain', 'run', 'lin-worse', '--follow', '--json');
  t.is(worse.code, 0, worse.stderr);
  const rejected = JSON.parse(worse.stdout) as RetrainingRun;
  t.is(rejected.status, 'rejected');
  t.regex(rejected.reason!, /^the candidate's mae [0-9.e+-]+ does not beat the current model's [0-9.e+-]+$/);
  t.deepEqual(rejected.candidate, { name: 'linear', version: 3 });
  t.like(jsonOf<ModelVersion>(t, await cli('model', 'show', 'linear:3', '--json')).lineage.metrics, { mae: rejected.evaluation!.candidate, 'current.mae': rejected.evaluation!.current });
  t.true(rejected.evaluation!.candidate > rejected.evaluation!.current);
  t.is(jsonOf<Deployment>(t, await cli('service', 'show', 'lin', '--json')).revision, deployment.revision);

  // A crashing trainer, then one past its timeout: failed with their logs, the service untouched.
  await createJob(t, cli, 'lin-crash', ['--params', '{"mode":"crash"}']);
  const crash = await cli('retrain', 'run', 'lin-crash', '--follow');
  t.is(crash.code, 1);
  t.regex(crash.stdout, /crashing as asked/);
  t.regex(crash.stderr, /ended failed: training failed/);
  const crashed = jsonOf<RetrainingJob>(t, await cli('retrain', 'show', 'lin-crash', '--json')).lastRun!;
  t.like(crashed, { status: 'failed', candidate: null, rollout: null });

  await createJob(t, cli, 'lin-slow', ['--params', '{"mode":"sleep"}', '--timeout', '5s']);
  const queued = jsonOf<RetrainingRun>(t, await cli('retrain', 'run', 'lin-slow', '--json'));
  const slow = await runEnded(hub, queued.id);
  t.is(slow.status, 'failed');
  t.regex(slow.reason!, /^training timed-out/);
  t.regex((await cli('retrain', 'logs', 'lin-slow')).stdout, /sleeping as asked/);
  t.deepEqual(await containerIds(`label=${TRAINING_LABEL}=${hubInstanceId(resolve(hub.data))}`), [], 'no training container is left');

  const after = jsonOf<Deployment>(t, await cli('service', 'show', 'lin', '--json'));
  t.is(after.revision, deployment.revision);
  t.is((await score(gateway, created.key, 10)).y, 21);
  const listed = await cli('retrain', 'list');
  t.regex(listed.stdout, /lin-job\s+lin\s+linear-fit\s+40 labels\s+\d+\s+promoted/);

  // The same runs in the portal: the job, each run's outcome, and the promoted run's stages, numbers and log.
  const browser = await openBrowser(t);
  const page = await newPortalPage(t, browser, hub.url);
  await signIn(page, hub.url, hub.adminKey);
  await page.goto('/ui/retraining');
  const jobs = page.getByRole('table', { name: 'Jobs' });
  await jobs.getByRole('row', { name: /lin-job/ }).getByText('promoted').waitFor();
  const runs = page.getByRole('table', { name: /Runs/ });
  await runs.getByRole('row', { name: new RegExp(`#${promoted.id}\\b`) }).getByText('promoted').waitFor();
  await runs.getByRole('row', { name: new RegExp(`#${crashed.id}\\b`) }).getByText('failed').waitFor();
  await screenshot(page, 'retraining');
  await runs.getByRole('link', { name: `#${promoted.id}`, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: `Retraining run #${promoted.id}` }).waitFor();
  // The status line under the heading starts with the run's status.
  await page.locator('[aria-live=polite]').filter({ hasText: /^\s*promoted\b/ }).waitFor();
  await page.getByText(new RegExp(`^mae [0-9.e+-]+ → [0-9.e+-]+ on ${evaluation.compared} rows$`)).waitFor();
  t.is(await page.getByRole('link', { name: 'linear:2' }).getAttribute('href'), '/ui/models/linear?version=2');
  t.is(await page.getByRole('link', { name: `rollout ${promoted.rollout}` }).getAttribute('href'), `/ui/rollouts/${promoted.rollout}`);
  await page.getByText(/^End of the log · \d+ lines$/).waitFor();
  t.regex(await page.getByLabel('Run log').innerText(), /\[train\]/, "the trainer's output is in the log");

  // The candidate's lineage: trained by this job's run from labels, then built and running on the device.
  await page.getByRole('link', { name: 'linear:2' }).click();
  const chain = page.getByRole('list', { name: 'Lineage of linear:2, from data to devices' });
  await chain.getByRole('link', { name: device }).waitFor();
  const lineage = (await chain.innerText()).replace(/\s+/g, ' ');
  t.regex(lineage, new RegExp(`lin-job run ${promoted.id}\\b`));
  t.regex(lineage, /trainer linear-fit:1/);
  t.is(await chain.getByRole('link', { name: `lin-job run ${promoted.id}` }).getAttribute('href'), `/ui/retraining/runs/${promoted.id}`);
  await screenshot(page, 'lineage');
  assertNoConsoleErrors(t, page);

  // A read key sees the run but not its log (users' data), and no cancel button.
  const reader = jsonOf<{ key: string }>(t, await cli('apikey', 'create', '--name', 'portal-reader', '--scope', 'read', '--json'));
  const readPage = await newPortalPage(t, browser, hub.url);
  await signIn(readPage, hub.url, reader.key);
  await readPage.goto(`/ui/retraining/runs/${promoted.id}`);
  await readPage.getByText(/needs a key with the deploy scope/).waitFor();
  t.is(await readPage.getByLabel('Run log').count(), 0);
  t.is(await readPage.getByRole('button', { name: 'Cancel run' }).count(), 0);
  assertNoConsoleErrors(t, readPage);
});
