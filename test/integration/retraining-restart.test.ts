/**
 * A scheduled retraining run (node-cron, every minute) on a base dataset, its trainer sleeping:
 * the hub is killed (SIGKILL) while the training container runs. At the next start the run is
 * `failed` ("the hub stopped during the run"), not left running, and its container is gone.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import type { RetrainingJob, RetrainingRun, RetrainingRunList } from '../../shared/api/retraining.js';
import { hubInstanceId } from '../../hub/builds/image-builder.js';
import { containerName, TRAINING_LABEL } from '../../hub/training/training-runner.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/linear/', import.meta.url));
const LONG = 10 * 60_000;

async function containers(filter: string): Promise<string[]> {
  return (await exec('docker', ['ps', '-aq', '--no-trunc', '--filter', filter])).stdout.split('\n').filter(Boolean);
}

test('a hub killed during a scheduled run ends the run failed at its next start and removes the training container', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const env = { EDGEML_HUB_IMAGE_PREFIX: prefix };
  const hub = await startHub(t, ['--registry', registry], { env });
  const instance = hubInstanceId(resolve(hub.data));
  t.teardown(async () => {
    for (const c of await containers(`label=${TRAINING_LABEL}=${instance}`)) await exec('docker', ['rm', '-f', c]);
    await deleteFromRegistry(registry, `${prefix}/linear-scorer`, 'v1').catch(() => undefined);
  });
  const cli = cliFor(hub, hub.adminKey, LONG);

  // A deployed service (on no device: the run only needs its image and model) and a base dataset.
  jsonOf(t, await cli('model', 'register', 'linear', `${EXAMPLE}model/model.json`, '--json'));
  jsonOf(t, await cli('manifest', 'create', 'linear-scorer', '--runtime', 'node', '--score', `${EXAMPLE}score.js`, '--model', 'linear:1', '--schema', `${EXAMPLE}schema.json`, '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'linear-scorer', '--platform', 'linux/amd64', '--json'));
  jsonOf<DeploymentCreated>(t, await cli('deploy', 'lin', '--build', String(image.id), '--target', `site=nowhere-${prefix}`, '--json'));
  const rows = Array.from({ length: 20 }, (_, x) => JSON.stringify({ input: { x }, label: 2 * x + 1 })).join('\n');
  const dataset = await api(hub, 'POST', '/api/v1/datasets/line/versions', { key: hub.adminKey, body: Buffer.from(`${rows}\n`), contentType: 'application/x-ndjson' });
  t.is(dataset.status, 201, JSON.stringify(dataset.body));
  const trainer = await api(hub, 'POST', '/api/v1/trainers/linear-fit/versions', {
    key: hub.adminKey,
    json: { runtime: 'node', train: { filename: 'train.js', content: await readFile(`${EXAMPLE}trainer/train.js`, 'utf8') } },
  });
  t.is(trainer.status, 201, JSON.stringify(trainer.body));

  jsonOf<RetrainingJob>(t, await cli('retrain', 'create', 'nightly', '--service', 'lin', '--trainer', 'linear-fit', '--dataset', 'line:1', '--schedule', '* * * * *', '--params', '{"mode":"sleep"}', '--eval-metric', 'mae', '--eval-output', '/y', '--json'));
  // The schedule fires within a minute (the trainer image builds meanwhile); the run trains until killed.
  const run = await waitFor(
    'a scheduled run training',
    async () => {
      const { body } = await api<RetrainingRunList>(hub, 'GET', '/api/v1/retraining/jobs/nightly/runs', { key: hub.adminKey });
      const first = body.runs.at(-1);
      return first?.stage === 'training' && (await containers(`name=${containerName(`${instance}-${first.id}`)}`)).length === 1 && first;
    },
    LONG,
    500,
  );
  t.is(run.trigger, 'schedule');
  t.is(run.createdBy, null);

  await hub.kill('SIGKILL');
  const restarted = await startHub(t, ['--registry', registry], { data: hub.data, env });
  const after = (await api<RetrainingRun>(restarted, 'GET', `/api/v1/retraining/runs/${run.id}`, { key: restarted.adminKey })).body;
  t.like(after, { status: 'failed', reason: 'the hub stopped during the run', stage: 'training' });
  t.truthy(after.finishedAt);
  t.deepEqual(await containers(`name=${containerName(`${instance}-${run.id}`)}`), [], 'the killed run left no container');
  const shown = await cliFor(restarted, restarted.adminKey, LONG)('retrain', 'show', 'nightly', String(run.id));
  t.regex(shown.stdout, /status:\s+failed \(training\)/);
  t.regex(shown.stdout, /reason:\s+the hub stopped during the run/);
});
