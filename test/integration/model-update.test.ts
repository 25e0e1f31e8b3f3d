/**
 * `edgeml service update SVC --model NAME:VERSION` with a real hub, agent, Docker and registry: one
 * command makes the manifest version, builds it for the current image's platforms and rolls it
 * out; the same device URL and key then answer with the new model. The refusals (a foreign image,
 * a model the manifest does not hold, the version it already runs) come before anything is made.
 * A hub killed mid-build carries the update on after its restart.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { ModelUpdate } from '../../shared/api/model-updates.js';
import type { Rollout } from '../../shared/api/rollouts.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api, enrollDevice, servingRevision } from '../helpers/hub-api.js';
import { pushVariant } from '../helpers/registry-variants.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 15 * 60_000;

test('service update --model rebuilds and rolls out in one command; same URL and key answer with the new model; a hub killed mid-build carries on', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const env = { EDGEML_HUB_IMAGE_PREFIX: prefix };
  let hub = await startHub(t, ['--registry', registry], { env });
  const cli = () => cliFor(hub, hub.adminKey, LONG);
  const id = `mu-${randomBytes(3).toString('hex')}`;
  t.teardown(async () => {
    const ids = (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${id}`])).stdout.split('\n').filter(Boolean);
    if (ids.length) await exec('docker', ['rm', '-f', ...ids]);
    for (const tag of ['v1', 'v2', 'v3']) await deleteFromRegistry(registry, `${prefix}/js`, tag).catch(() => undefined);
  });

  // Version 2 of the model: the same weights with the class names reversed, so the sample (a setosa) reads virginica.
  const weights = JSON.parse(await readFile(join(FIXTURES, 'models', 'iris-linear', 'weights.json'), 'utf8')) as { classes: string[] };
  const v2 = join(await tempDir(t), 'iris-linear');
  await mkdir(v2);
  await writeFile(join(v2, 'weights.json'), JSON.stringify({ ...weights, classes: [...weights.classes].reverse() }));
  jsonOf(t, await cli()('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli()('model', 'register', 'iris-linear', v2, '--json'));
  jsonOf(t, await cli()('model', 'register', 'other', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli()('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const first = jsonOf<Image>(t, await cli()('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));

  await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId: id, token: await enrollDevice(hub, id, { fleet: id }), extraArgs: ['--platform', 'linux/amd64', '--health-timeout', '2m'] });
  const deployed = jsonOf<Deployment & { key: string }>(t, await cli()('deploy', 'iris', '--build', String(first.id), '--target', `fleet=${id}`, '--json'));
  jsonOf<Rollout>(t, await cli()('rollout', 'status', String(deployed.rollout.id), '--watch', '--json'));
  const before = await servingRevision(hub, id, 1, 120_000);
  const input = join(await tempDir(t), 'input.json');
  await writeFile(input, JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }));
  const score = () => cli().withEnv({ EDGEML_SERVICE_KEY: deployed.key })('score', 'iris', '--device', id, '--input', input, '--json');
  t.like(jsonOf<{ class: string }>(t, await score()), { class: 'setosa' });

  // Refused before anything is made: exit 1, the hub's 409 code, no new manifest version.
  const foreign = `${registry}/${prefix}/js@${(await pushVariant(registry, first.ref!, 'linux/amd64', { env: ['EDGEML_TEST_VARIANT=2'] })).digest}`;
  jsonOf(t, await cli()('deploy', 'foreign', '--image', foreign, '--target', 'fleet=nowhere', '--json'));
  for (const [service, model, message] of [
    ['foreign', 'iris-linear:2', /service foreign runs .*, an image this hub did not build/],
    ['iris', 'other:1', /has no model other \(it has iris-linear\)/],
    ['iris', 'iris-linear:1', /service iris already runs iris-linear:1/],
  ] as const) {
    const refused = await cli()('service', 'update', service, '--model', model);
    t.is(refused.code, 1, refused.stderr);
    t.regex(refused.stderr, message);
    t.regex(refused.stderr, /HUB_E_CONFLICT/);
  }
  const notThere = await cli()('service', 'update', 'iris', '--model', 'iris-linear:9');
  t.regex(notThere.stderr, /HUB_E_MODEL_NOT_FOUND/);
  t.is((await cli()('service', 'update', 'iris', '--model', 'iris-linear:2', '--replicas', '2')).code, 2, '--model goes alone');
  // A rollout request JSON Schema passes but the hub cannot use: 400 before a manifest or a build.
  const badRollout = await api<{ error: { code: string; message: string } }>(hub, 'POST', '/api/v1/deployments/iris/model', {
    key: hub.adminKey,
    json: { model: 'iris-linear:2', rollout: { strategy: 'canary', gates: { minRequests: 5 } } },
  });
  t.is(badRollout.status, 400, JSON.stringify(badRollout.body));
  t.regex(badRollout.body.error.message, /body\.rollout\.gates: give at least one of/);
  t.is(jsonOf<{ versions: ManifestVersion[] }>(t, await cli()('manifest', 'list', '--name', 'js', '--json')).versions.length, 1);

  // One command: manifest js:2, image for linux/amd64 (the current image's platforms), rollout.
  const updated = await cli()('service', 'update', 'iris', '--model', 'iris-linear:2', '--strategy', 'all-at-once', '--json');
  const result = jsonOf<Deployment & { modelUpdate: ModelUpdate }>(t, updated);
  t.like(result.modelUpdate, { service: 'iris', model: 'iris-linear:2', manifest: { name: 'js', version: 2 }, status: 'done', rollout: result.rollout.id, error: null });
  t.like(result, { service: 'iris', revision: 2, build: result.modelUpdate.image, keyId: deployed.keyId });
  t.deepEqual(result.models.map((m) => `${m.name}:${m.version}`), ['iris-linear:2']);
  const image = (await api<Image>(hub, 'GET', `/api/v1/images/${result.modelUpdate.image}`, { key: hub.adminKey })).body;
  t.deepEqual(Object.keys(image.platforms), ['linux/amd64']);
  t.like(image, { status: 'succeeded', manifest: { name: 'js', version: 2 } });
  const recorded = await api<ModelUpdate>(hub, 'GET', `/api/v1/model-updates/${result.modelUpdate.id}`, { key: hub.adminKey });
  t.is(recorded.status, 200);
  t.deepEqual(recorded.body, result.modelUpdate);
  t.is((await api(hub, 'GET', '/api/v1/model-updates/999', { key: hub.adminKey })).status, 404);

  const rollout = jsonOf<Rollout>(t, await cli()('rollout', 'status', String(result.rollout.id), '--watch', '--json'));
  t.is(rollout.phase, 'succeeded');
  const after = await servingRevision(hub, id, 2, 120_000);
  t.is(after.gateway, before.gateway, 'the same device URL');
  t.like(jsonOf<{ class: string }>(t, await score()), { class: 'virginica' }, 'the same key, the new model');

  // Over REST, killed mid-build: the restarted hub builds again and updates the service.
  const started = await api<ModelUpdate>(hub, 'POST', '/api/v1/deployments/iris/model', { key: hub.adminKey, json: { model: 'iris-linear:1' } });
  t.is(started.status, 202, JSON.stringify(started.body));
  t.like(started.body, { status: 'building', model: 'iris-linear:1', manifest: { name: 'js', version: 3 }, rollout: null });
  await waitFor('the build to run', async () => (await api<Image>(hub, 'GET', `/api/v1/images/${started.body.image}`, { key: hub.adminKey })).body.status === 'building', 60_000, 100);
  await hub.kill('SIGKILL');
  hub = await startHub(t, ['--registry', registry], { env, data: hub.data });
  const done = await waitFor('the model update to be done after the restart', async () => {
    const r = (await api<ModelUpdate>(hub, 'GET', `/api/v1/model-updates/${started.body.id}`, { key: hub.adminKey })).body;
    if (r.status === 'failed') throw new Error(`model update failed: ${JSON.stringify(r.error)}`);
    return r.status === 'done' ? r : undefined;
  }, 10 * 60_000, 500);
  const resumed = (await api<Deployment>(hub, 'GET', '/api/v1/deployments/iris', { key: hub.adminKey })).body;
  t.like(resumed, { revision: 3, build: started.body.image, rollout: { id: done.rollout! } });
  t.like((await api<Image>(hub, 'GET', `/api/v1/images/${started.body.image}`, { key: hub.adminKey })).body, { status: 'succeeded', attempts: 2 });
  t.true(hub.logs.some((l) => l.msg === 'model update interrupted by a hub stop; carrying on'));
});
