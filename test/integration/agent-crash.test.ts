/**
 * An agent killed (-9) at precise points of a rollout, then restarted on the same data, with a real
 * hub, Docker and registry:
 * - during the health check of a revision that never gets healthy: the old container, the one last
 *   promoted, keeps serving; the new one is not trusted although Docker shows it running;
 * - during a pull (a registry gate holds the new layer): the restarted agent pulls again, a stalled
 *   pull fails with a reason while the old revision serves, and the pull completes once released;
 * - between the switch and the removal of the old container (a slow request keeps it draining):
 *   the restarted agent keeps the new container and removes the old one.
 * After each restart the device ends with exactly one container for the service, serving. Last,
 * the hub is killed and restarted: the agent takes its states (a new epoch) and redeploys nothing.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir, type EdgemlProcess, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deviceOf, enrollDevice, servingRevision } from '../helpers/hub-api.js';
import { pushVariant, startRegistryGate } from '../helpers/registry-variants.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
// Long enough to outlast the switch on a loaded machine, short of the runtime's 30 s drain.
const SLOW_RUN_MS = 25_000;

interface Box {
  id: string;
  revision: number;
  port: number;
  running: boolean;
}

async function containersOf(deviceId: string): Promise<Box[]> {
  const ids = (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`])).stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = JSON.parse((await exec('docker', ['inspect', ...ids])).stdout) as Array<{ Id: string; State: { Running: boolean }; Config: { Labels: Record<string, string> } }>;
  return inspected.map((c) => ({ id: c.Id, revision: Number(c.Config.Labels['io.edgeml.revision']), port: Number(c.Config.Labels['io.edgeml.port']), running: c.State.Running }));
}

test('an agent killed during a health check, a pull, or a switch converges to one serving container', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const deviceId = `crash-${randomBytes(3).toString('hex')}`;
  const gate = await startRegistryGate(registry);
  t.teardown(async () => {
    gate.release();
    await gate.close();
    for (const c of await containersOf(deviceId)) await exec('docker', ['rm', '-f', c.id]);
    await deleteFromRegistry(registry, `${prefix}/js`, 'v1').catch(() => undefined);
  });

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--env', `FIXTURE_SLOW_RUN_MS=${SLOW_RUN_MS}`, '--json'));
  const good = jsonOf<Image>(t, await cli('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  t.is(good.status, 'succeeded');
  const repo = `${registry}/${prefix}/js`;
  // Never healthy: init() waits for a file that never appears.
  const hang = await pushVariant(registry, good.ref!, 'linux/amd64', { env: ['FIXTURE_INIT_GATE=/nonexistent'] });
  // New layers no engine has: one pulled through the gate, one straight from the registry.
  const gated = await pushVariant(registry, good.ref!, 'linux/amd64', { layerBytes: 256 * 1024 });
  const plain = await pushVariant(registry, good.ref!, 'linux/amd64', { layerBytes: 256 * 1024 });

  const mqttUrl = `mqtt://${hub.mqtt}`;
  const token = await enrollDevice(hub, deviceId, { site: 'crash' });
  const data = await tempDir(t, 'edgeml-agent-');
  const agentArgs = ['--platform', 'linux/amd64', '--health-timeout', '8s', '--pull-stall-timeout', '4s'];
  const start = () => startAgent(t, { mqttUrl, deviceId, token, data, extraArgs: agentArgs });
  let agent: EdgemlProcess = await start();
  /** kill -9, then a new agent on the same data; resolves once the hub sees the new one online. */
  const restart = async () => {
    await agent.kill('SIGKILL');
    agent = await start();
    await waitFor('the restarted agent to be online', async () => (await deviceOf(hub, deviceId)).status === 'online', 30_000, 200);
  };

  const deployed = jsonOf<DeploymentCreated>(t, await cli('deploy', 'scorer', '--build', String(good.id), '--target', 'site=crash', '--json'));
  const { sample } = JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8')) as { sample: { features: number[] } };
  const gatewayOf = async () => (await waitFor('the device online', async () => {
    const d = await deviceOf(hub, deviceId);
    return d.status === 'online' && d.gateway ? d.gateway : undefined;
  }, 30_000, 200));
  const rolloutFailed = (revision: number) => agent.waitForLog(`revision ${revision} to fail`, (l) => l.msg === 'rollout failed; the previous replicas keep serving' && l.revision === revision, LONG);
  const score = async (body: unknown = sample) => {
    const res = await request(`${await gatewayOf()}/v1/services/scorer/score`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${deployed.key}` }, body: JSON.stringify(body) });
    return { status: res.statusCode, body: (await res.body.json()) as { class?: string } };
  };
  const servedRevision = async () => {
    const res = await request(`${await gatewayOf()}/v1/services`, { headers: { authorization: `Bearer ${deployed.key}` } });
    return ((await res.body.json()) as { services: Array<{ revision: number }> }).services[0]?.revision;
  };
  await serving(hub, deviceId, 1);
  const [first] = await containersOf(deviceId);
  t.is((await score()).body.class, 'setosa');

  // 1. Killed while revision 2 waits for /health (it never answers 200): Docker keeps it running.
  t.is((await cli('service', 'update', 'scorer', '--image', `${repo}@${hang.digest}`)).code, 0);
  await waitFor('revision 2 to be started', async () => (await containersOf(deviceId)).some((c) => c.revision === 2 && c.running), LONG, 200);
  await restart();
  t.is((await rolloutFailed(2)).code, 'AGENT_E_HEALTH_FAILED');
  t.true((await containersOf(deviceId)).some((c) => c.id === first!.id && c.running), 'the promoted container was kept');
  t.is(await servedRevision(), 1);
  t.is((await score()).status, 200);

  // 2. Killed during a pull: the gate holds the new layer.
  gate.hold(gated.layer!);
  t.is((await cli('service', 'update', 'scorer', '--image', `${gate.host}/${prefix}/js@${gated.digest}`)).code, 0);
  await waitFor('the pull to reach the held layer', () => gate.heldRequests() >= 1, LONG, 100);
  await restart();
  // The restarted agent pulls again; held past the stall timeout, the pull fails with a reason.
  const stalled = await rolloutFailed(3);
  t.is(stalled.code, 'AGENT_E_PULL_FAILED');
  t.regex(String(stalled.err), /no progress for 4 s/);
  t.true(gate.heldRequests() >= 2, 'the restarted agent pulled again');
  t.is((await score()).status, 200, 'revision 1 serves while the pull is stuck');
  gate.release();
  await serving(hub, deviceId, 3);
  await waitFor('one container, revision 3', async () => {
    const cs = await containersOf(deviceId);
    return cs.length === 1 && cs[0]!.revision === 3 && cs[0]!.running;
  }, LONG, 200);
  t.is(await servedRevision(), 3);
  t.is((await score()).body.class, 'setosa');

  // 3. Killed between the switch and the removal: a slow request keeps revision 3 draining.
  const [third] = await containersOf(deviceId);
  const slow = request(`http://127.0.0.1:${third!.port}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...sample, fixture: 'slow' }) });
  await waitFor('the slow request to be running', async () => (await exec('docker', ['logs', third!.id])).stdout.includes('fixture: slow run started'), 30_000, 100);
  t.is((await cli('service', 'update', 'scorer', '--image', `${repo}@${plain.digest}`)).code, 0);
  await agent.waitForLog('the switch to revision 4', (l) => l.msg === 'service switched to the new replicas' && l.revision === 4, LONG);
  const killed = agent;
  await agent.kill('SIGKILL');
  t.deepEqual((await containersOf(deviceId)).map((c) => c.revision).sort(), [3, 4], 'killed with both containers there');
  agent = await start();
  await waitFor('one container, revision 4', async () => {
    const cs = await containersOf(deviceId);
    return cs.length === 1 && cs[0]!.revision === 4 && cs[0]!.running;
  }, LONG, 200);
  await serving(hub, deviceId, 4);
  t.is(await servedRevision(), 4);
  t.is((await score()).body.class, 'setosa');
  const drained = await slow;
  t.is(drained.statusCode, 200, 'the request in flight on the old container was answered before it stopped');

  // Revision 1's image fell out of the service's history (it keeps revisions 4 and 3): pruned, by the
  // killed agent (pruning runs beside the drain) or else by the restarted one.
  const pruned = (p: typeof agent) => p.logs.some((l) => l.msg === 'pruned an image no service keeps' && l.image === good.ref);
  await waitFor('revision 1 image to be pruned', () => pruned(killed) || pruned(agent), 30_000, 200);
  t.not((await exec('docker', ['image', 'inspect', good.ref!])).code, 0, 'the oldest image is gone');

  // 4. The hub killed (-9) and restarted on its data and addresses: a new epoch, nothing redeployed.
  const [serving4] = await containersOf(deviceId);
  await hub.kill('SIGKILL');
  const again = await startHub(t, ['--registry', registry, '--http', hub.http, '--mqtt', hub.mqtt], { data: hub.data, env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  await agent.waitForLog('the restarted hub\'s desired state', (l) => l.msg === 'desired state from a new hub epoch (the hub restarted): taken whatever its generation', 60_000);
  await serving(again, deviceId, 4);
  t.deepEqual((await containersOf(deviceId)).map((c) => c.id), [serving4!.id], 'the same container: nothing redeployed');
  t.is((await score()).body.class, 'setosa');
});

const serving = (hub: HubProcess, id: string, revision: number) => servingRevision(hub, id, revision, LONG);
