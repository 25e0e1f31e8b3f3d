/**
 * What devices would refuse never gets into the hub, and what got in anyway (a store from an older
 * hub, a file edited by hand) never stops it: the real hub over real HTTP, devices as raw mqtt.js
 * clients reading their retained desired state.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import type { DeploymentList } from '../../shared/api/deployments.js';
import type { DeviceList } from '../../shared/api/devices.js';
import type { ProblemList } from '../../shared/api/problems.js';
import { decodeMessage, MAX_MESSAGE_BYTES, type DesiredState } from '../../shared/protocol.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api, enrollDevice, type ErrorAnswer } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const IMAGE = `127.0.0.1:5000/edgeml-test/iris@sha256:${'1'.repeat(64)}`;

/** Every desired-state payload the broker delivers to device `id`, raw and decoded. */
async function deviceView(t: ExecutionContext, hub: HubProcess, id: string, token: string) {
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: token, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  const payloads: Buffer[] = [];
  client.on('message', (_topic, payload) => payloads.push(payload));
  await client.subscribeAsync(`edgeml/v1/dev/${id}/desired`, { qos: 1 });
  const states = () => payloads.flatMap((p) => {
    const d = decodeMessage('desired', p);
    return d.ok ? [d.value] : [];
  });
  return { payloads, states, latest: (what: string, match: (s: DesiredState) => boolean) => waitFor(`${id}: ${what}`, () => states().findLast(match)) };
}

const deploy = (hub: HubProcess, body: Record<string, unknown>) => api<ErrorAnswer>(hub, 'POST', '/api/v1/deployments', { key: hub.adminKey, json: { image: IMAGE, target: { site: 'lab' }, ...body } });

test('limits, labels and rollout timeouts devices would refuse get 400 naming the field, and nothing is stored', async (t) => {
  const hub = await startHub(t);
  await enrollDevice(hub, 'lab-1', { site: 'lab' });
  const tooManyLabels = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));

  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    ['memory below 4 MiB', { memory: '1k' }, /body\.memory: must be between 4\.0 MB and 1\.0 TB, not 1k/],
    ['memory of 20 digits', { memory: '99999999999999999999t' }, /body\.memory: must be between/],
    ['memory above 1 TiB', { memory: '1025g' }, /body\.memory/],
    ['cpus 0', { cpus: 0 }, /body\.cpus/],
    ['cpus above 1024', { cpus: 1e9 }, /body\.cpus/],
    ['maxConcurrent 0', { maxConcurrent: 0 }, /body\.maxConcurrent/],
    ['maxConcurrent huge', { maxConcurrent: 2 ** 40 }, /body\.maxConcurrent/],
    ['maxQueue huge', { maxQueue: 1e12 }, /body\.maxQueue/],
    ['65 target labels', { target: tooManyLabels }, /body\.target/],
    ['a soak of years', { rollout: { strategy: 'canary', soak: '99999999999999999999d' } }, /body\.rollout\.soak: must be at most 30d/],
    ['a device timeout over 30 days', { rollout: { deviceTimeout: '31d' } }, /body\.rollout\.deviceTimeout/],
  ];
  for (const [what, body, message] of refused) {
    const res = await deploy(hub, { service: 'iris', ...body });
    t.is(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
    t.is(res.body.error?.code, 'HUB_E_INVALID_REQUEST', what);
    t.regex(res.body.error?.message ?? '', message, what);
  }
  t.deepEqual((await api<DeploymentList>(hub, 'GET', '/api/v1/deployments', { key: hub.adminKey })).body, { deployments: [] }, 'nothing was stored');

  // Labels: enrollment and label changes are bounded too, counting the labels a device keeps.
  const many = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 'v']));
  const enroll = await api<ErrorAnswer>(hub, 'POST', '/api/v1/devices', { key: hub.adminKey, json: { id: 'many', labels: many } });
  t.is(enroll.status, 400, JSON.stringify(enroll.body).slice(0, 300));
  t.regex(enroll.body.error.message, /body\.labels/);
  const sixtyFour = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v']));
  t.is((await api(hub, 'POST', '/api/v1/devices', { key: hub.adminKey, json: { id: 'full', labels: sixtyFour } })).status, 201, '64 labels are fine');
  const relabel = await api<ErrorAnswer>(hub, 'PATCH', '/api/v1/devices/full/labels', { key: hub.adminKey, json: { set: { one: 'more' } } });
  t.is(relabel.status, 400, JSON.stringify(relabel.body));
  t.regex(relabel.body.error.message, /at most 64 labels/);
  const devices = (await api<DeviceList>(hub, 'GET', '/api/v1/devices', { key: hub.adminKey })).body.devices;
  t.deepEqual(devices.map((d) => d.id).sort(), ['full', 'lab-1']);
  t.is(Object.keys(devices.find((d) => d.id === 'full')!.labels).length, 64, 'the refused change left the labels as they were');

  // The bounds themselves are accepted, and the hub is healthy throughout.
  const smallest = await deploy(hub, { service: 'iris', memory: '4m', cpus: 1024, maxConcurrent: 1024, maxQueue: 100_000, rollout: { deviceTimeout: '30d' } });
  t.is(smallest.status, 201, JSON.stringify(smallest.body));
  const health = await api<{ status: string; problems: number }>(hub, 'GET', '/healthz');
  t.like(health.body, { status: 'ok', problems: 0 });
});

test("a change whose desired state a device would drop (over the protocol's message size) is refused and nothing of it is stored", async (t) => {
  const hub = await startHub(t);
  const lab = await deviceView(t, hub, 'lab-1', await enrollDevice(hub, 'lab-1', { site: 'lab' }));
  // Each service carries 64 redacted names of 128 characters (~8.5 kB): about 30 fit in one message.
  const capture = (n: number) => ({ rate: 0.5, maxBodyBytes: 1024, redact: Array.from({ length: 64 }, (_, i) => `s${n}-f${i}-`.padEnd(128, 'x')) });
  let accepted = 0;
  let refusal: ErrorAnswer | undefined;
  for (let n = 0; n < 60 && !refusal; n++) {
    const res = await deploy(hub, { service: `svc-${n}`, capture: capture(n) });
    if (res.status === 201) accepted++;
    else if (res.status === 400) refusal = res.body;
    else t.fail(`svc-${n}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  t.truthy(refusal, 'some deployment would overflow the device');
  t.regex(refusal!.error.message, /device lab-1 would refuse its desired state with service svc-\d+: payload of \d+ bytes exceeds 262144/);
  t.true(accepted >= 20, `${accepted} deployments fit`);
  t.is((await api<DeploymentList>(hub, 'GET', '/api/v1/deployments', { key: hub.adminKey })).body.deployments.length, accepted, 'the refused one was not stored');
  const last = await lab.latest(`${accepted} services`, (s) => s.services.length === accepted);
  t.is(last.generation, accepted);
  t.true(lab.payloads.every((p) => p.length <= MAX_MESSAGE_BYTES), 'every desired state sent is one the device takes');
  t.is(lab.payloads.length, lab.states().length);
});

test('a stored deployment devices would refuse does not stop the hub: it is reported and skipped, and the rest of the fleet is served', async (t) => {
  const first = await startHub(t);
  const tokens = { lab: await enrollDevice(first, 'lab-1', { site: 'lab' }), field: await enrollDevice(first, 'field-1', { site: 'field' }) };
  t.is((await deploy(first, { service: 'bad', memory: '256m' })).status, 201);
  t.is((await deploy(first, { service: 'good', target: { site: 'field' } })).status, 201);
  await first.kill('SIGTERM');

  // What the defect left behind: a deployment (and the desired state computed from it) with limits
  // the protocol refuses, as an older hub stored them.
  const file = join(first.data, 'hub.json');
  const data = JSON.parse(await readFile(file, 'utf8'));
  data.deployments.bad.limits.memoryBytes = 1024;
  for (const r of data.deployments.bad.revisions) r.limits.memoryBytes = 1024;
  for (const s of data.desired['lab-1'].services) s.limits.memoryBytes = 1024;
  await writeFile(file, JSON.stringify(data));

  const hub = await startHub(t, [], { data: first.data });
  const skipped = await hub.waitForLog('the skipped deployment logged', (l) => l.msg === 'stored record skipped: it no longer validates' && l.kind === 'deployment');
  t.like(skipped, { level: 'error', id: 'bad' });
  t.regex(String(skipped.reason), /revision 1: limits\.memoryBytes: must be >= 4194304/);

  const health = await api<{ status: string; problems: number }>(hub, 'GET', '/healthz');
  t.like(health.body, { status: 'degraded', problems: 1 });
  t.is((await api(hub, 'GET', '/api/v1/problems')).status, 401, 'the list needs a key');
  const problems = (await api<ProblemList>(hub, 'GET', '/api/v1/problems', { key: hub.adminKey })).body.problems;
  // lab-1's stored state held the broken service too: skipped at start, then replaced by a valid one.
  t.true(hub.logs.some((l) => l.msg === 'stored record skipped: it no longer validates' && l.kind === 'desired' && l.id === 'lab-1'));
  t.deepEqual(problems.map((p) => [p.kind, p.id]), [['deployment', 'bad']]);
  t.regex(problems[0]!.message, /memoryBytes/);

  // Devices are served: field-1 gets its stored state back, lab-1 a state without the broken service.
  const field = await deviceView(t, hub, 'field-1', tokens.field);
  t.deepEqual((await field.latest('good', (s) => s.services.length > 0)).services.map((s) => s.name), ['good']);
  const lab = await deviceView(t, hub, 'lab-1', tokens.lab);
  t.deepEqual((await lab.latest('a state it takes', () => true)).services, []);

  // The API answers around it, and new work goes on.
  const list = await api<DeploymentList>(hub, 'GET', '/api/v1/deployments', { key: hub.adminKey });
  t.is(list.status, 200);
  t.deepEqual(list.body.deployments.map((d) => d.service), ['good']);
  const one = await api<ErrorAnswer>(hub, 'GET', '/api/v1/deployments/bad', { key: hub.adminKey });
  t.is(one.status, 409);
  t.is(one.body.error.code, 'HUB_E_RECORD_INVALID');
  t.is((await deploy(hub, { service: 'next', memory: '64m' })).status, 201);
  t.deepEqual((await lab.latest('next', (s) => s.services.length > 0)).services.map((s) => s.name), ['next']);
  t.true(JSON.parse(await readFile(file, 'utf8')).deployments.bad !== undefined, 'the skipped record is kept, for someone to fix');
});
