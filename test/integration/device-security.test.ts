/**
 * Device identity at the hub's broker, against real processes: enrollment through the CLI, agents
 * that connect with their token, raw mqtt.js clients with wrong, revoked or borrowed credentials and
 * with reach for other devices' topics, and the broker over TLS with a certificate made here.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Device, DeviceEnrolled, DeviceList } from '../../shared/api/devices.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const device = async (hub: HubProcess, id: string) => (await api<Device>(hub, 'GET', `/api/v1/devices/${id}`, { key: hub.adminKey })).body;

/**
 * Connects, or resolves with the CONNACK refusal code (4: bad credentials), or -1 when there was
 * no MQTT answer at all (a failed TLS handshake, a timeout).
 */
async function tryConnect(url: string, opts: IClientOptions): Promise<MqttClient | number> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
  return new Promise((resolve) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      const code = (err as { code?: unknown }).code;
      resolve(typeof code === 'number' ? code : -1);
    });
    // A connect timeout closes without an error event.
    client.once('close', () => resolve(-1));
  });
}

/** The QoS the broker granted, or 128 for a refusal (mqtt.js rejects a SUBACK with a failure). */
async function grantedQos(client: MqttClient, filter: string): Promise<number> {
  try {
    const [grant] = await client.subscribeAsync(filter, { qos: 1 });
    return grant?.qos ?? -1;
  } catch (err) {
    return (err as { packet?: { granted?: number[] } }).packet?.granted?.[0] ?? -1;
  }
}

async function connected(t: ExecutionContext, url: string, opts: IClientOptions): Promise<MqttClient> {
  const client = await tryConnect(url, opts);
  if (typeof client === 'number') throw new Error(`connection refused with code ${client}`);
  t.teardown(() => client.endAsync(true));
  return client;
}

test('enroll, list, show and label devices through the CLI; only the token hash is stored', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const enrolled = jsonOf<DeviceEnrolled>(t, await cli('device', 'enroll', 'gw-1', '--label', 'site=lab', '--label', 'zone=a', '--json'));
  t.like(enrolled, { id: 'gw-1', status: 'never-connected', labels: { site: 'lab', zone: 'a' } });
  t.regex(enrolled.token, /^emd_[A-Za-z0-9_-]{43}$/);
  const human = await cli('device', 'enroll', 'gw-2');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /only time the token is shown/);
  t.regex(human.stdout, /\n {2}emd_[A-Za-z0-9_-]{43}\n/);

  const stored = await readFile(join(hub.data, 'hub.json'), 'utf8');
  t.false(stored.includes(enrolled.token.slice(4)), 'the token is not in the store');
  t.false(hub.logs.some((l) => JSON.stringify(l).includes(enrolled.token.slice(4))), 'nor in the log');

  const again = await cli('device', 'enroll', 'gw-1');
  t.is(again.code, 1);
  t.regex(again.stderr, /already enrolled.*\[HUB_E_CONFLICT\]/);
  const bad = await cli('device', 'enroll', '../x');
  t.is(bad.code, 2);
  t.regex(bad.stderr, /device id "\.\.\/x"/);
  const badLabel = await cli('device', 'enroll', 'gw-3', '--label', 'site=a b');
  t.is(badLabel.code, 2);
  t.regex(badLabel.stderr, /--label "site=a b"/);

  t.deepEqual(jsonOf<Device>(t, await cli('device', 'label', 'gw-1', 'site=field', 'zone-', 'rack=7', '--json')).labels, { site: 'field', rack: '7' });
  const lab = jsonOf<DeviceList>(t, await cli('device', 'list', '--label', 'site=field', '--json'));
  t.deepEqual(lab.devices.map((d) => d.id), ['gw-1']);
  const table = await cli('device', 'list');
  t.regex(table.stdout, /^ID +STATUS +LABELS/);
  t.regex(table.stdout, /gw-2 +never-connected/);
  const shown = await cli('device', 'show', 'gw-1');
  t.regex(shown.stdout, /labels: +site=field,rack=7\n/);
  const missing = await cli('device', 'show', 'nope');
  t.is(missing.code, 1);
  t.regex(missing.stderr, /HUB_E_DEVICE_NOT_FOUND/);

  const readKey = jsonOf<{ key: string }>(t, await cli('apikey', 'create', '--name', 'viewer', '--scope', 'read', '--json')).key;
  const viewer = cliFor(hub, readKey);
  t.is((await viewer('device', 'list')).code, 0, 'read may list');
  const refused = await viewer('device', 'enroll', 'gw-9');
  t.regex(refused.stderr, /needs the admin scope/);
});

test('the broker admits a device only with its own token; wrong, unknown, borrowed and revoked credentials are refused', async (t) => {
  const hub = await startHub(t);
  const url = `mqtt://${hub.mqtt}`;
  const tokenA = await enrollDevice(hub, 'dev-a');
  const tokenB = await enrollDevice(hub, 'dev-b');

  t.is(await tryConnect(url, { clientId: 'dev-a', username: 'dev-a', password: `${tokenA}x` }), 4, 'wrong token');
  t.is(await tryConnect(url, { clientId: 'dev-a', username: 'dev-a', password: tokenB }), 4, "another device's token");
  t.is(await tryConnect(url, { clientId: 'dev-a', username: 'dev-a' }), 4, 'no token');
  t.is(await tryConnect(url, { clientId: 'ghost', username: 'ghost', password: tokenA }), 4, 'not enrolled');
  t.is(await tryConnect(url, { clientId: 'dev-a', username: 'dev-b', password: tokenB }), 4, "dev-b cannot take over dev-a's session");
  t.is(await tryConnect(url, { clientId: 'anon' }), 4, 'anonymous');

  const agent = await startAgent(t, { mqttUrl: url, deviceId: 'dev-a', token: tokenA });
  await waitFor('dev-a online', async () => (await device(hub, 'dev-a')).status === 'online');

  // Revoking drops the live connection, and the token stops working for good.
  const revoked = jsonOf<Device>(t, await cliFor(hub)('device', 'revoke', 'dev-a', '--json'));
  t.is(revoked.status, 'revoked');
  t.truthy(revoked.revokedAt);
  await agent.waitForLog('the agent is told it was refused', (l) => l.level === 'error' && String(l.msg).startsWith('the hub refused this device'), 30_000);
  t.is(await tryConnect(url, { clientId: 'dev-a', username: 'dev-a', password: tokenA }), 4, 'a revoked token');
  t.is((await device(hub, 'dev-a')).status, 'revoked');
  t.true(hub.logs.some((l) => l.msg === 'mqtt connection refused: bad credentials' && l.username === 'dev-a'));
});

test('a device can neither subscribe to nor publish on another device topics, nor publish the hub channels', async (t) => {
  const hub = await startHub(t);
  const url = `mqtt://${hub.mqtt}`;
  const agentA = await startAgent(t, { mqttUrl: url, deviceId: 'dev-a', token: await enrollDevice(hub, 'dev-a') });
  await waitFor('dev-a online', async () => (await device(hub, 'dev-a')).status === 'online');
  const b = await connected(t, url, { clientId: 'dev-b', username: 'dev-b', password: await enrollDevice(hub, 'dev-b') });

  const granted: Record<string, number> = {};
  for (const filter of ['edgeml/v1/dev/dev-a/desired', 'edgeml/v1/dev/+/desired', '#', 'edgeml/v1/dev/dev-b/status', 'edgeml/v1/dev/dev-b/desired']) {
    granted[filter] = await grantedQos(b, filter);
  }
  t.deepEqual(granted, {
    'edgeml/v1/dev/dev-a/desired': 128,
    'edgeml/v1/dev/+/desired': 128,
    '#': 128,
    'edgeml/v1/dev/dev-b/status': 128,
    'edgeml/v1/dev/dev-b/desired': 1,
  });
  t.true(b.connected, 'a refused subscription is answered in the SUBACK, not by dropping the connection');

  // A forged `offline` for dev-a: the broker drops it and closes the connection that tried.
  const closed = new Promise<void>((resolve) => b.once('close', () => resolve()));
  b.publish('edgeml/v1/dev/dev-a/status', JSON.stringify({ v: 1, state: 'offline', reason: 'shutdown' }), { qos: 1 });
  await closed;
  await hub.waitForLog('the denial is logged', (l) => l.msg === 'mqtt publish denied' && l.topic === 'edgeml/v1/dev/dev-a/status');

  // The hub's own channels are the hub's, even under the device's own prefix.
  const c = await connected(t, url, { clientId: 'dev-c', username: 'dev-c', password: await enrollDevice(hub, 'dev-c') });
  const closedC = new Promise<void>((resolve) => c.once('close', () => resolve()));
  c.publish('edgeml/v1/dev/dev-c/desired', JSON.stringify({ v: 1, generation: 99, services: [] }), { qos: 1 });
  await closedC;
  await hub.waitForLog('that denial too', (l) => l.msg === 'mqtt publish denied' && l.topic === 'edgeml/v1/dev/dev-c/desired');

  t.is((await device(hub, 'dev-a')).status, 'online', 'the forged status did not reach the hub');
  t.true(agentA.running);
});

test('the broker over TLS with a certificate made here: an agent trusting it connects; plain MQTT does not', async (t) => {
  const dir = await tempDir(t, 'edgeml-tls-');
  const [cert, key] = [join(dir, 'broker.crt'), join(dir, 'broker.key')];
  const made = await exec('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=edgeml test broker', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ]);
  t.is(made.code, 0, made.stderr);
  const hub = await startHub(t, ['--mqtt-tls-cert', cert, '--mqtt-tls-key', key]);
  const token = await enrollDevice(hub, 'tls-dev');
  const port = hub.mqtt.slice(hub.mqtt.lastIndexOf(':') + 1);

  const agent = await startAgent(t, { mqttUrl: `mqtts://127.0.0.1:${port}`, deviceId: 'tls-dev', token, extraArgs: ['--hub-ca', cert] });
  await waitFor('tls-dev online over TLS', async () => (await device(hub, 'tls-dev')).status === 'online');
  t.true(agent.running);

  t.is(await tryConnect(`mqtts://127.0.0.1:${port}`, { clientId: 'tls-dev-2', ca: [await readFile(cert)], connectTimeout: 5000 }), 4, 'TLS alone is not a credential');
  const untrusted = await tryConnect(`mqtts://127.0.0.1:${port}`, { clientId: 'x', username: 'tls-dev', password: token, connectTimeout: 5000 });
  t.is(untrusted, -1, 'a client that does not trust the certificate does not connect');
  const plain = await tryConnect(`mqtt://127.0.0.1:${port}`, { clientId: 'x', username: 'tls-dev', password: token, connectTimeout: 3000 });
  t.is(plain, -1, 'plain MQTT to the TLS port does not connect');
});
