/**
 * The example model on a small fleet: a hub builds examples/iris-onnx for linux/amd64 and
 * linux/arm64; two agents labelled site=lab (one acting as an arm64 device, its container under
 * QEMU) both run it and score the sample through their gateways; a third device enrolled afterwards
 * gets it too. (Agents killed at precise points of a rollout: agent-crash.test.ts.)
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/iris-onnx/', import.meta.url));
const LONG = 15 * 60_000;

const device = async (hub: HubProcess, id: string) => (await api<Device>(hub, 'GET', `/api/v1/devices/${id}`, { key: hub.adminKey })).body;

const running = (hub: HubProcess, id: string) =>
  waitFor(
    `${id} to run the service`,
    async () => {
      const d = await device(hub, id);
      // What an offline device last reported (a gateway that is gone) proves nothing.
      if (d.status !== 'online') return undefined;
      if (d.services[0]?.phase === 'rejected') throw new Error(`${id} rejected the service: ${d.services[0].error?.message}`);
      return d.services[0]?.phase === 'running' && d.gateway !== null ? d : undefined;
    },
    LONG,
    1000,
  );

async function containers(deviceId: string): Promise<string[]> {
  const r = await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`]);
  return r.stdout.split('\n').filter(Boolean);
}

test('the example runs on an amd64 and an arm64 device, and on one enrolled later', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const ids = ['amd', 'arm', 'late'].map((k) => `${k}-${randomBytes(3).toString('hex')}`) as [string, string, string];
  t.teardown(async () => {
    for (const id of ids) for (const c of await containers(id)) await exec('docker', ['rm', '-f', c]);
    await deleteFromRegistry(registry, `${prefix}/iris-scorer`, 'v1').catch(() => undefined);
  });

  jsonOf(t, await cli('model', 'register', 'iris', join(EXAMPLE, 'model'), '--framework', 'onnx', '--json'));
  const example = (f: string) => join(EXAMPLE, f);
  jsonOf(t, await cli('manifest', 'create', 'iris-scorer', '--model', 'iris:1', '--runtime', 'node', '--score', example('score.js'), '--schema', example('schema.json'), '--deps', example('package.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'iris-scorer', '--json'));

  const mqttUrl = `mqtt://${hub.mqtt}`;
  const [amd, arm, late] = ids;
  await startAgent(t, { mqttUrl, deviceId: amd, token: await enrollDevice(hub, amd, { site: 'lab' }), extraArgs: ['--platform', 'linux/amd64'] });
  await startAgent(t, { mqttUrl, deviceId: arm, token: await enrollDevice(hub, arm, { site: 'lab' }), extraArgs: ['--platform', 'linux/arm64'] });

  const deployed = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--build', String(image.id), '--target', 'site=lab', '--json'));
  t.deepEqual([...deployed.rollout.devices].sort(), [amd, arm].sort());

  const { sample } = JSON.parse(await readFile(example('schema.json'), 'utf8')) as { sample: unknown };
  const score = async (gateway: string) => {
    const res = await request(`${gateway}/v1/services/iris/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${deployed.key}` },
      body: JSON.stringify(sample),
    });
    return { status: res.statusCode, body: (await res.body.json()) as { predictions?: Array<{ label: string }> } };
  };
  for (const id of [amd, arm]) {
    const d = await running(hub, id);
    t.is(d.facts?.platform, id === arm ? 'linux/arm64' : 'linux/amd64');
    const answer = await score(d.gateway!);
    t.is(answer.status, 200, `${id}: ${JSON.stringify(answer.body)}`);
    t.is(answer.body.predictions?.[0]?.label, 'setosa', id);
    t.is((await containers(id)).length, 1, `${id}: one container`);
  }
  const machine = await exec('docker', ['exec', (await containers(arm))[0]!, 'uname', '-m']);
  t.is(machine.stdout.trim(), 'aarch64', 'the arm64 device runs the arm64 image (under QEMU)');

  // Enrolled after the deployment, with the label: it gets the service too.
  await startAgent(t, { mqttUrl, deviceId: late, token: await enrollDevice(hub, late, { site: 'lab' }), extraArgs: ['--platform', 'linux/amd64'] });
  const lateDevice = await running(hub, late);
  t.like(lateDevice.services[0], { name: 'iris', revision: 1, image: image.ref! });
  t.is((await score(lateDevice.gateway!)).body.predictions?.[0]?.label, 'setosa');
});
