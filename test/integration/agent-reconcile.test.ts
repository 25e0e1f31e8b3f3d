/**
 * The agent's reconcile loop against real Docker: a hub builds a small scoring image (python fixture,
 * linux/amd64 only), a deployment selects two enrolled agents, one of them acting as an arm64
 * device. The amd64 agent pulls, starts and health-checks the container and reports it running;
 * the arm64 one rejects the image before downloading anything. A SIGKILLed agent restarted on the
 * same data converges to exactly one container.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { request } from 'undici';
import { FINISHED_STATUSES, type Image } from '../../shared/api/images.js';
import type { Device } from '../../shared/api/devices.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;

const device = async (hub: HubProcess, id: string) => (await api<Device>(hub, 'GET', `/api/v1/devices/${id}`, { key: hub.adminKey })).body;

/** This device's containers, as the agent labels them. */
async function containersOf(deviceId: string): Promise<Array<{ id: string; state: string; labels: Record<string, string> }>> {
  const r = await exec('docker', ['ps', '-a', '--filter', `label=io.edgeml.device=${deviceId}`, '--format', '{{json .}}']);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { ID: string; State: string; Labels: string })
    .map((c) => ({ id: c.ID, state: c.State, labels: Object.fromEntries(c.Labels.split(',').map((kv) => kv.split('=') as [string, string])) }));
}

test('a deployment runs on the matching amd64 device, is rejected on the arm64 one, and survives an agent kill -9', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const suffix = randomBytes(3).toString('hex');
  const [amd, arm] = [`amd-${suffix}`, `arm-${suffix}`];
  t.teardown(async () => {
    for (const id of [amd, arm]) for (const c of await containersOf(id)) await exec('docker', ['rm', '-f', c.id]);
    await deleteFromRegistry(registry, `${prefix}/py`, 'v1').catch(() => undefined);
  });

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'py', '--model', 'iris-linear:1', '--runtime', 'python', '--score', join(FIXTURES, 'python', 'linear', 'score.py'), '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'py', '--platform', 'linux/amd64', '--json'));
  t.true(FINISHED_STATUSES.includes(image.status));
  t.is(image.status, 'succeeded');

  const mqttUrl = `mqtt://${hub.mqtt}`;
  const amdToken = await enrollDevice(hub, amd, { site: 'lab' });
  const amdData = await tempDir(t, 'edgeml-agent-');
  let amdAgent = await startAgent(t, { mqttUrl, deviceId: amd, token: amdToken, data: amdData, extraArgs: ['--platform', 'linux/amd64'] });
  const armAgent = await startAgent(t, { mqttUrl, deviceId: arm, token: await enrollDevice(hub, arm, { site: 'lab' }), extraArgs: ['--platform', 'linux/arm64'] });

  jsonOf(t, await cli('deploy', 'scorer', '--build', String(image.id), '--target', 'site=lab', '--memory', '256m', '--json'));

  const running = await waitFor(
    `${amd} to report the service running`,
    async () => {
      const d = await device(hub, amd);
      return d.phase === 'converged' && d.services[0]?.phase === 'running' && d;
    },
    LONG,
    1000,
  );
  t.is(running.observedGeneration, running.desiredGeneration);
  t.like(running.services[0], { name: 'scorer', revision: 1, image: image.ref!, servingRevision: 1, error: null });
  const [container, ...extra] = await containersOf(amd);
  t.deepEqual(extra, [], 'one container');
  t.is(container?.state, 'running');
  t.is(container?.labels['io.edgeml.service'], 'scorer');
  const port = container!.labels['io.edgeml.port'];
  const sample = JSON.parse((await exec('cat', [join(FIXTURES, 'schema.json')])).stdout) as { sample: unknown };
  const scored = await request(`http://127.0.0.1:${port}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(sample.sample) });
  t.is(scored.statusCode, 200);
  t.is(((await scored.body.json()) as { class: string }).class, 'setosa');
  const memory = await exec('docker', ['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}}', container!.id]);
  t.is(memory.stdout.trim(), `${256 * 1024 * 1024} host unless-stopped`);

  const rejected = await waitFor(`${arm} to reject the image`, async () => {
    const d = await device(hub, arm);
    return d.services[0]?.phase === 'rejected' && d;
  }, LONG, 1000);
  t.is(rejected.phase, 'failed');
  t.is(rejected.services[0]?.error?.code, 'AGENT_E_PLATFORM_UNAVAILABLE');
  t.regex(rejected.services[0]?.error?.message ?? '', /has no image for linux\/arm64 \(it has linux\/amd64\); nothing was downloaded/);
  t.false(armAgent.logs.some((l) => l.msg === 'pulling'), 'nothing was pulled');
  t.deepEqual(await containersOf(arm), []);

  // kill -9 and a restart on the same data: the running container is adopted, not duplicated.
  await amdAgent.kill('SIGKILL');
  amdAgent = await startAgent(t, { mqttUrl, deviceId: amd, token: amdToken, data: amdData, extraArgs: ['--platform', 'linux/amd64'] });
  await amdAgent.waitForLog('a pass after the restart', (l) => l.msg === 'desired state received' || l.msg === 'agent started', 60_000);
  await waitFor(`${amd} to report converged again`, async () => {
    const d = await device(hub, amd);
    return d.phase === 'converged' && d.services[0]?.phase === 'running';
  }, LONG, 1000);
  const after = await containersOf(amd);
  t.is(after.length, 1);
  t.is(after[0]?.id, container!.id, 'the same container, kept');
});
