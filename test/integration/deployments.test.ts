/**
 * Deployments at the hub, seen from the devices' side: devices are raw mqtt.js clients that log in
 * with their tokens and read their retained desired state, as an agent does. (The agent that acts
 * on it is tested with real Docker elsewhere.)
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import { TargetCache } from '../../agent/reconcile/target-cache.js';
import type { ApiKeyCreated } from '../../shared/api/apikeys.js';
import type { Deployment, DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import { decodeMessage, type DesiredState, type ReportedState } from '../../shared/protocol.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const IMAGE_1 = `127.0.0.1:5000/edgeml-test/iris@sha256:${'1'.repeat(64)}`;
const IMAGE_2 = `127.0.0.1:5000/edgeml-test/iris@sha256:${'2'.repeat(64)}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A device's view: it connects as itself and keeps every desired state the broker delivers. */
async function deviceView(t: ExecutionContext, hub: HubProcess, id: string, token: string) {
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: token, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  const received: DesiredState[] = [];
  client.on('message', (_topic, payload) => {
    const decoded = decodeMessage('desired', payload);
    if (decoded.ok) received.push(decoded.value);
  });
  await client.subscribeAsync(`edgeml/v1/dev/${id}/desired`, { qos: 1 });
  return {
    client,
    received,
    generation: (n: number) => waitFor(`${id} to get generation ${n}`, () => received.find((d) => d.generation === n)),
  };
}

const EPOCH = /^[0-9a-f]{32}$/;

test('deploy writes the desired state of every matching device; later and relabelled devices follow; service update moves them', async (t) => {
  const data = await tempDir(t, 'edgeml-hub-');
  const hub = await startHub(t, [], { data });
  const cli = cliFor(hub);
  const tokens: Record<string, string> = {};
  for (const [id, site] of [['lab-1', 'lab'], ['lab-2', 'lab'], ['field-1', 'field']] as const) tokens[id] = await enrollDevice(hub, id, { site });
  const lab1 = await deviceView(t, hub, 'lab-1', tokens['lab-1']!);
  const field1 = await deviceView(t, hub, 'field-1', tokens['field-1']!);

  const deployed = jsonOf<DeploymentCreated>(
    t,
    await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--max-queue', '2', '--memory', '256m', '--cpus', '0.5', '--json'),
  );
  t.regex(deployed.key, /^ems_[A-Za-z0-9_-]{43}$/);
  t.like(deployed, {
    service: 'iris',
    revision: 1,
    image: IMAGE_1,
    build: null,
    limits: { maxConcurrent: 1, maxQueue: 2, memoryBytes: 256 * 1024 * 1024, cpus: 0.5 },
    rollout: { revision: 1, strategy: 'all-at-once', devices: ['lab-1', 'lab-2'] },
  });
  t.false('keyHash' in deployed, 'the key hash is for devices only');

  const first = await lab1.generation(1);
  t.regex(first.epoch ?? '', EPOCH, "every desired state carries the store's epoch");
  t.deepEqual(first.services, [
    { name: 'iris', revision: 1, image: IMAGE_1, limits: deployed.limits, keyHash: sha256(deployed.key), models: [] },
  ]);
  const lab2 = await deviceView(t, hub, 'lab-2', tokens['lab-2']!);
  t.is((await lab2.generation(1)).services[0]?.image, IMAGE_1, 'a device that connects later gets the retained state');

  // A second service for the field: field-1's first desired state has only that one.
  jsonOf(t, await cli('deploy', 'counter', '--image', IMAGE_2, '--target', 'site=field', '--max-concurrent', '4', '--json'));
  t.deepEqual((await field1.generation(1)).services.map((s) => s.name), ['counter'], 'iris never reached a device outside its selector');

  // Enrolled afterwards with a matching label; relabelled into the selector.
  const lab3 = await deviceView(t, hub, 'lab-3', await enrollDevice(hub, 'lab-3', { site: 'lab' }));
  t.deepEqual((await lab3.generation(1)).services.map((s) => s.name), ['iris']);
  t.is((await cli('device', 'label', 'field-1', 'site=lab')).code, 0);
  t.deepEqual((await field1.generation(2)).services.map((s) => s.name), ['iris'], 'relabelled: iris in, counter out');

  const updated = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--image', IMAGE_2, '--json'));
  t.like(updated, { revision: 2, image: IMAGE_2, keyId: deployed.keyId, rollout: { revision: 2 } });
  t.deepEqual(updated.rollout.devices, ['field-1', 'lab-1', 'lab-2', 'lab-3']);
  const moved = await lab1.generation(2);
  t.like(moved.services[0], { name: 'iris', revision: 2, image: IMAGE_2, keyHash: sha256(deployed.key) }, 'same key, new image');

  const same = await cli('service', 'update', 'iris', '--image', IMAGE_2);
  t.is(same.code, 1);
  t.regex(same.stderr, /already runs .* \(revision 2\).*\[HUB_E_CONFLICT\]/);
  const twice = await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab');
  t.regex(twice.stderr, /service iris is already deployed.*\[HUB_E_CONFLICT\]/);
  const both = await cli('deploy', 'x', '--image', IMAGE_1, '--build', '1', '--target', 'site=lab');
  t.is(both.code, 2);
  t.regex(both.stderr, /exactly one of --image REF@sha256:… and --build ID/);
  const tag = await cli('deploy', 'x', '--image', '127.0.0.1:5000/edgeml/iris:latest', '--target', 'site=lab');
  t.is(tag.code, 2);
  t.regex(tag.stderr, /pinned by digest/);
  const noBuild = await cli('deploy', 'x', '--build', '42', '--target', 'site=lab');
  t.regex(noBuild.stderr, /image 42 not found.*\[HUB_E_IMAGE_NOT_FOUND\]/);
  const missing = await cli('service', 'show', 'nope');
  t.regex(missing.stderr, /service nope is not deployed.*\[HUB_E_DEPLOYMENT_NOT_FOUND\]/);

  // kill -9: the restarted hub's broker has no retained messages; it publishes the stored states again.
  await hub.kill('SIGKILL');
  const again = await startHub(t, [], { data });
  const lab1After = await deviceView(t, again, 'lab-1', tokens['lab-1']!);
  const republished = await lab1After.generation(2);
  t.is(republished.services[0]?.image, IMAGE_2);
  t.not(republished.epoch, first.epoch, 'every start is a new epoch (a restored backup must not look older)');
  t.deepEqual(
    lab1After.received.map((d) => d.generation),
    [2],
    'the same generation again, nothing redeployed',
  );
  t.is(jsonOf<Deployment>(t, await cliFor(again)('service', 'show', 'iris', '--json')).revision, 2);
});

/** A hub on a fresh store: deploys `first` to gw-1, then updates to each of `then`; gw-1's last desired state. */
async function freshHubDesired(t: ExecutionContext, first: string, ...then: string[]): Promise<DesiredState> {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const device = await deviceView(t, hub, 'gw-1', await enrollDevice(hub, 'gw-1', { site: 'lab' }));
  jsonOf(t, await cli('deploy', 'iris', '--image', first, '--target', 'site=lab', '--json'));
  for (const image of then) jsonOf(t, await cli('service', 'update', 'iris', '--image', image, '--json'));
  const last = await device.generation(1 + then.length);
  await hub.kill('SIGTERM');
  return last;
}

test('a hub started over with another store counts generations again in another epoch, and an agent takes them', async (t) => {
  const before = await freshHubDesired(t, IMAGE_1, IMAGE_2);
  const after = await freshHubDesired(t, IMAGE_1);
  t.like(before, { generation: 2 });
  t.like(after, { generation: 1 });
  t.not(after.epoch, before.epoch);

  const cache = new TargetCache(await tempDir(t, 'edgeml-agent-'));
  await cache.load();
  t.true(await cache.offer(before));
  t.deepEqual(await cache.consider(after), { accepted: true, reason: 'new-epoch' }, 'generation 1 of the new hub replaces generation 2 of the old one');
  t.is(cache.get()?.services[0]?.image, IMAGE_1);
});

test('what a device reports survives a kill -9 of the hub once flushed: device show still has its services', async (t) => {
  const data = await tempDir(t, 'edgeml-hub-');
  const hub = await startHub(t, [], { data });
  const cli = cliFor(hub);
  const view = await deviceView(t, hub, 'gw-1', await enrollDevice(hub, 'gw-1', { site: 'lab' }));
  jsonOf(t, await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--json'));
  await view.generation(1);
  const report: ReportedState = {
    v: 1,
    observedGeneration: 1,
    phase: 'converged',
    services: [{ name: 'iris', revision: 1, image: IMAGE_1, phase: 'running', servingRevision: 1, progress: null, error: null }],
  };
  await view.client.publishAsync('edgeml/v1/dev/gw-1/reported', JSON.stringify({ ...report, phase: 'reconciling', services: [{ ...report.services[0], phase: 'pulling', servingRevision: null }] }), { qos: 1 });
  await view.client.publishAsync('edgeml/v1/dev/gw-1/reported', JSON.stringify(report), { qos: 1 });
  await waitFor('the hub to show the report', async () => {
    const d = jsonOf<Device>(t, await cli('device', 'show', 'gw-1', '--json'));
    return d.phase === 'converged';
  });
  // The batch is written within the flush delay; the store on disk says when.
  await waitFor('the report to be written', async () => {
    const stored = JSON.parse(await readFile(join(data, 'hub.json'), 'utf8')) as { devices: Record<string, { observed: { reported?: ReportedState } }> };
    return stored.devices['gw-1']?.observed.reported?.phase === 'converged';
  });

  await hub.kill('SIGKILL');
  const again = await startHub(t, [], { data });
  const after = jsonOf<Device>(t, await cliFor(again)('device', 'show', 'gw-1', '--json'));
  t.like(after, { desiredGeneration: 1, observedGeneration: 1, phase: 'converged' });
  t.deepEqual(after.services, report.services);
});

test('capture settings reach the devices with the next desired state, with no new revision; rate 0 takes them away', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const device = await deviceView(t, hub, 'cap-1', await enrollDevice(hub, 'cap-1', { site: 'lab' }));

  const deployed = jsonOf<DeploymentCreated>(
    t,
    await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--capture-rate', '0.5', '--capture-max-body', '8k', '--capture-redact', 'password, ssn', '--json'),
  );
  t.deepEqual(deployed.capture, { rate: 0.5, maxBodyBytes: 8192, redact: ['password', 'ssn'] });
  jsonOf(t, await cli('deploy', 'plain', '--image', IMAGE_2, '--target', 'site=lab', '--json'));
  const plain = jsonOf<Deployment>(t, await cli('service', 'show', 'plain', '--json'));
  t.deepEqual(plain.capture, { rate: 0, maxBodyBytes: 16 * 1024, redact: [] }, 'off unless asked for');
  const created = await device.generation(2);
  t.deepEqual(created.services.find((s) => s.name === 'iris')?.capture, deployed.capture);
  t.false('capture' in created.services.find((s) => s.name === 'plain')!, 'capture off: the desired state devices got before capture existed');

  // REST: the whole settings, checked.
  const bad = await api<{ error: { code: string; message: string } }>(hub, 'PUT', '/api/v1/deployments/iris/capture', { key: hub.adminKey, json: { rate: 2, maxBodyBytes: 1024, redact: [] } });
  t.is(bad.status, 400);
  t.is(bad.body.error.code, 'HUB_E_INVALID_REQUEST');
  t.regex(bad.body.error.message, /rate/);
  const tooBig = await api<{ error: { message: string } }>(hub, 'PUT', '/api/v1/deployments/iris/capture', { key: hub.adminKey, json: { rate: 1, maxBodyBytes: 1024 * 1024, redact: [] } });
  t.is(tooBig.status, 400);
  t.regex(tooBig.body.error.message, /maxBodyBytes/);
  t.is((await api(hub, 'PUT', '/api/v1/deployments/nope/capture', { key: hub.adminKey, json: { rate: 1, maxBodyBytes: 1024, redact: [] } })).status, 404);
  const reader = jsonOf<ApiKeyCreated>(t, await cli('apikey', 'create', '--scope', 'read', '--name', 'ro', '--json'));
  t.is((await api(hub, 'PUT', '/api/v1/deployments/iris/capture', { key: reader.key, json: { rate: 1, maxBodyBytes: 1024, redact: [] } })).status, 403, 'the deploy scope');

  const put = await api<Deployment>(hub, 'PUT', '/api/v1/deployments/iris/capture', { key: hub.adminKey, json: { rate: 1, maxBodyBytes: 1024, redact: ['token', 'token'] } });
  t.is(put.status, 200);
  t.like(put.body, { revision: 1, capture: { rate: 1, maxBodyBytes: 1024, redact: ['token'] }, rollout: { id: deployed.rollout.id } });
  t.is(put.body.revisions.length, 1, 'no new revision');
  const changed = await device.generation(3);
  t.like(changed.services.find((s) => s.name === 'iris'), { revision: 1, image: IMAGE_1, capture: { rate: 1, maxBodyBytes: 1024, redact: ['token'] } });

  // The CLI keeps what is not given: a new rate does not drop the redact list.
  const rate = jsonOf<Deployment>(t, await cli('service', 'capture', 'iris', '--rate', '0.25', '--json'));
  t.deepEqual(rate.capture, { rate: 0.25, maxBodyBytes: 1024, redact: ['token'] });
  const shown = await cli('service', 'show', 'iris');
  t.regex(shown.stdout, /capture:\s+rate 0\.25, bodies up to 1\.0 KB, redact token/);
  const off = jsonOf<Deployment>(t, await cli('service', 'capture', 'iris', '--rate', '0', '--redact', '', '--json'));
  t.deepEqual(off.capture, { rate: 0, maxBodyBytes: 1024, redact: [] });
  const last = await device.generation(5);
  t.false('capture' in last.services.find((s) => s.name === 'iris')!);
  t.like(last.services.find((s) => s.name === 'iris'), { revision: 1, image: IMAGE_1 });
  t.regex((await cli('service', 'show', 'iris')).stdout, /capture:\s+off/);

  const outOfRange = await cli('service', 'capture', 'iris', '--rate', '1.5');
  t.is(outOfRange.code, 2);
  t.regex(outOfRange.stderr, /--rate "1\.5": expected a share of requests from 0 \(off\) to 1/);
  const maxBodyAlone = await cli('deploy', 'x', '--image', IMAGE_1, '--target', 'site=lab', '--capture-max-body', '1k');
  t.is(maxBodyAlone.code, 2);
  t.regex(maxBodyAlone.stderr, /--capture-max-body and --capture-redact need --capture-rate/);
  const hugeBody = await cli('deploy', 'x', '--image', IMAGE_1, '--target', 'site=lab', '--capture-rate', '1', '--capture-max-body', '1m');
  t.is(hugeBody.code, 2);
  t.regex(hugeBody.stderr, /--capture-max-body "1m": expected a size from 1 byte to 64\.0 KB/);
});
