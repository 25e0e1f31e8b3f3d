/**
 * Staged rollouts with six real agents, real Docker and the rig's registry:
 * - canary 1 device, then batches of 2: it completes, every device on the new revision, and no
 *   batch moved before the one before it was healthy;
 * - a new image that never gets healthy: the canary fails at its device timeout, the rollout
 *   aborts at the threshold and rolls the canary back; the other devices were never touched.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import type { Rollout } from '../../shared/api/rollouts.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { pushVariant } from '../helpers/registry-variants.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const DEVICES = 6;
/**
 * Six Node containers start at once on 2 cores that other test files share: 6 s was too short
 * there (3 of 6 unhealthy in a CI run). Idle they answer /health in about a second, and the agent
 * polls for it, so a long limit costs nothing when all goes well.
 */
const HEALTH_TIMEOUT = '2m';
/** The image that never gets healthy fails at the rollout's device timeout, not the agent's. */
const BROKEN_DEVICE_TIMEOUT = '15s';

const device = async (hub: HubProcess, id: string) => (await api<Device>(hub, 'GET', `/api/v1/devices/${id}`, { key: hub.adminKey })).body;

async function containerIds(deviceId: string): Promise<string[]> {
  return (await exec('docker', ['ps', '-aq', '--no-trunc', '--filter', `label=io.edgeml.device=${deviceId}`])).stdout.split('\n').filter(Boolean).sort();
}

test('six agents: a canary rollout in batches completes in order; a failing image aborts at the canary and rolls it back', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const suffix = randomBytes(3).toString('hex');
  const ids = Array.from({ length: DEVICES }, (_, i) => `ro${i + 1}-${suffix}`);
  t.teardown(async () => {
    for (const id of ids) for (const c of await containerIds(id)) await exec('docker', ['rm', '-f', c]);
    await deleteFromRegistry(registry, `${prefix}/js`, 'v1').catch(() => undefined);
  });

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const good = jsonOf<Image>(t, await cli('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  const repo = `${registry}/${prefix}/js`;
  // Same layers, another configuration: a new image that starts as fast, and one that is never healthy.
  const next = `${repo}@${(await pushVariant(registry, good.ref!, 'linux/amd64', { env: ['EDGEML_TEST_VARIANT=2'] })).digest}`;
  const broken = `${repo}@${(await pushVariant(registry, good.ref!, 'linux/amd64', { env: ['FIXTURE_INIT_GATE=/nonexistent'] })).digest}`;

  const mqttUrl = `mqtt://${hub.mqtt}`;
  for (const id of ids) {
    await startAgent(t, { mqttUrl, deviceId: id, token: await enrollDevice(hub, id, { fleet: suffix }), extraArgs: ['--platform', 'linux/amd64', '--health-timeout', HEALTH_TIMEOUT] });
  }
  const created = jsonOf<Deployment>(t, await cli('deploy', 'scorer', '--build', String(good.id), '--target', `fleet=${suffix}`, '--json'));
  const first = jsonOf<Rollout>(t, await cli('rollout', 'status', String(created.rollout.id), '--watch', '--json'));
  t.is(first.phase, 'succeeded');
  t.is(first.counts.healthy, DEVICES);
  const before = new Map(await Promise.all(ids.map(async (id) => [id, await containerIds(id)] as const)));

  // Canary 1, then batches of 2: four batches.
  const updated = jsonOf<Deployment>(t, await cli('service', 'update', 'scorer', '--image', next, '--strategy', 'canary', '--canary', '1', '--batch-size', '2', '--soak', '2s', '--json'));
  const rollout = jsonOf<Rollout>(t, await cli('rollout', 'status', String(updated.rollout.id), '--watch', '--json'));
  t.like(rollout, { phase: 'succeeded', kind: 'update', strategy: 'canary', revision: 2, fromRevision: 1, batches: 4, progress: 1 });
  t.is(rollout.counts.healthy, DEVICES);
  t.deepEqual(rollout.devices.map((d) => d.batch), [0, 1, 1, 2, 2, 3]);
  for (const d of rollout.devices) {
    const earlier = rollout.devices.filter((e) => e.batch === d.batch - 1);
    for (const e of earlier) t.true(Date.parse(d.movedAt!) >= Date.parse(e.doneAt!), `${d.id} (batch ${d.batch + 1}) moved after ${e.id} (batch ${e.batch + 1}) was healthy`);
  }
  const canary = rollout.devices.find((d) => d.batch === 0)!;
  const soaked = Math.min(...rollout.devices.filter((d) => d.batch === 1).map((d) => Date.parse(d.movedAt!))) - Date.parse(canary.doneAt!);
  t.true(soaked >= 2000, `the canary soaked ${soaked} ms before batch 2`);
  for (const id of ids) {
    const d = await device(hub, id);
    t.like(d.services[0], { revision: 2, image: next, phase: 'running', servingRevision: 2 }, id);
  }
  const onTwo = new Map(await Promise.all(ids.map(async (id) => [id, await containerIds(id)] as const)));
  for (const id of ids) t.notDeepEqual(onTwo.get(id), before.get(id), `${id} runs a new container`);

  // A new image that never gets healthy: the canary fails, 0 failures tolerated, rolled back.
  const failing = jsonOf<Deployment>(t, await cli('service', 'update', 'scorer', '--image', broken, '--strategy', 'canary', '--canary', '1', '--batch-size', '2', '--device-timeout', BROKEN_DEVICE_TIMEOUT, '--json'));
  const watched = await cli('rollout', 'status', String(failing.rollout.id), '--watch', '--json');
  t.is(watched.code, 1, 'status --watch exits 1 for an aborted rollout');
  const aborted = JSON.parse(watched.stdout) as Rollout;
  t.is(aborted.phase, 'aborted');
  t.regex(aborted.reason ?? '', new RegExp(`^1 of 6 devices failed \\(the rollout tolerates 0\\); first: ${ids[0]}: not healthy within ${BROKEN_DEVICE_TIMEOUT}$`));
  t.truthy(aborted.rolledBackBy);
  const rollback = jsonOf<Rollout>(t, await cli('rollout', 'status', String(aborted.rolledBackBy), '--watch', '--json'));
  t.like(rollback, { kind: 'rollback', phase: 'succeeded', revision: 2, fromRevision: 3, rollbackOf: aborted.id });
  t.deepEqual(rollback.devices.map((d) => d.id), [ids[0]]);
  t.is(rollback.devices[0]?.phase, 'rolled-back');
  await waitFor('the aborted rollout to show its canary rolled back', async () => {
    const again = jsonOf<Rollout>(t, await cli('rollout', 'status', String(aborted.id), '--json'));
    return again.counts['rolled-back'] === 1 && again.counts.pending === DEVICES - 1;
  }, 30_000, 200);
  for (const id of ids) {
    const d = await device(hub, id);
    t.is(d.services[0]?.servingRevision, 2, `${id} serves revision 2`);
    if (id !== ids[0]) t.deepEqual(await containerIds(id), onTwo.get(id), `${id} was never touched`);
  }
  const list = jsonOf<{ rollouts: Rollout[] }>(t, await cli('rollout', 'list', '--service', 'scorer', '--json'));
  t.deepEqual(list.rollouts.map((r) => [r.kind, r.phase]), [['rollback', 'succeeded'], ['update', 'aborted'], ['update', 'succeeded'], ['create', 'succeeded']]);
  const shown = jsonOf<Deployment>(t, await cli('service', 'show', 'scorer', '--json'));
  t.like(shown, { revision: 3, stableRevision: 2, rollout: { id: rollback.id, kind: 'rollback', phase: 'succeeded' } });
});
