/**
 * The hub and enrolled agents as separate `edgeml` processes over a real MQTT connection.
 */
import test from 'ava';
import mqtt from 'mqtt';
import { request } from 'undici';
import { startAgent, startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

interface DeviceBody {
  id: string;
  status: string;
  offlineReason: string | null;
  facts: { platform: string; cpus: number; memoryBytes: number; agentVersion: string; docker: { version: string } | null } | null;
}
interface HealthBody {
  status: string;
  version: string;
  devicesOnline: number;
  mqtt: { connectedClients: number; received: number; invalid: number };
}

async function getJson<T>(hub: HubProcess, path: string): Promise<T> {
  const res = await request(`${hub.url}${path}`, { headers: { authorization: `Bearer ${hub.adminKey}` } });
  if (res.statusCode !== 200) throw new Error(`GET ${path} answered ${res.statusCode}: ${await res.body.text()}`);
  return (await res.body.json()) as T;
}

const device = (hub: HubProcess, id: string) => getJson<DeviceBody>(hub, `/api/v1/devices/${id}`);

test('two agents come online at the hub; SIGKILL sends the last will, SIGTERM a clean offline', async (t) => {
  const hub = await startHub(t);
  const mqttUrl = `mqtt://${hub.mqtt}`;
  const [tokenA, tokenB] = [await enrollDevice(hub, 'dev-a'), await enrollDevice(hub, 'dev-b')];
  const [a, b] = await Promise.all([
    startAgent(t, { mqttUrl, deviceId: 'dev-a', token: tokenA }),
    startAgent(t, { mqttUrl, deviceId: 'dev-b', token: tokenB, extraArgs: ['--platform', 'linux/arm64'] }),
  ]);

  const health = await waitFor('both devices online', async () => {
    const h = await getJson<HealthBody>(hub, '/healthz');
    return h.devicesOnline === 2 && h;
  });
  t.is(health.status, 'ok');
  t.regex(health.version, /^\d+\.\d+\.\d+/);

  const devA = await device(hub, 'dev-a');
  t.is(devA.status, 'online');
  t.truthy(devA.facts);
  t.true(devA.facts!.cpus > 0);
  t.true(devA.facts!.memoryBytes > 0);
  t.is(devA.facts!.agentVersion, health.version);
  // The rig runs dockerd, so the agent must have found it.
  t.truthy(devA.facts!.docker?.version, 'agent reports the Docker engine version');
  t.is((await device(hub, 'dev-b')).facts!.platform, 'linux/arm64', '--platform overrides the detected platform');

  await a.kill('SIGKILL');
  const lost = await waitFor('dev-a offline via last will', async () => {
    const d = await device(hub, 'dev-a');
    return d.status === 'offline' && d;
  });
  t.is(lost.offlineReason, 'lost');
  t.truthy(lost.facts, 'facts are kept while offline');
  t.is((await device(hub, 'dev-b')).status, 'online', 'the other device is unaffected');
  t.is((await getJson<HealthBody>(hub, '/healthz')).devicesOnline, 1);

  t.is(await b.kill('SIGTERM'), 0, 'agent exits 0 on SIGTERM');
  const stopped = await waitFor('dev-b offline after clean stop', async () => {
    const d = await device(hub, 'dev-b');
    return d.status === 'offline' && d;
  });
  t.is(stopped.offlineReason, 'shutdown');
  t.true(b.logs.some((l) => l.msg === 'agent stopped'));

  t.is(await hub.kill('SIGTERM'), 0, 'hub exits 0 on SIGTERM');
  t.true(hub.logs.some((l) => l.msg === 'hub stopped'));
});

test('garbage a device publishes on its own topics is dropped and counted; the hub keeps running', async (t) => {
  const hub = await startHub(t);
  const mqttUrl = `mqtt://${hub.mqtt}`;
  const agent = await startAgent(t, { mqttUrl, deviceId: 'dev-g', token: await enrollDevice(hub, 'dev-g') });
  await waitFor('dev-g online', async () => (await device(hub, 'dev-g')).status === 'online');

  // A device with a valid token and a bug (or a compromised one): the ACL lets it reach only its own topics.
  const rogueToken = await enrollDevice(hub, 'dev-r');
  const rogue = await mqtt.connectAsync(mqttUrl, { clientId: 'dev-r', username: 'dev-r', password: rogueToken, reconnectPeriod: 0 });
  t.teardown(() => rogue.endAsync(true));
  const before = await getJson<HealthBody>(hub, '/healthz');

  const garbage: Array<string | Buffer> = [
    'not json at all',
    Buffer.from([0xff, 0x00, 0xfe, 0x01]),
    '{"v":1,"state":"online"}', // missing since and facts
    '{"v":2,"state":"offline","reason":"lost"}', // unknown protocol version
    '[]',
    'null',
    '{"v":1,"state":"offline","reason":"lost","extra":true}',
  ];
  for (const payload of garbage) await rogue.publishAsync('edgeml/v1/dev/dev-r/status', payload, { qos: 1 });
  // Agents publish telemetry; the hub validates that channel too.
  await rogue.publishAsync('edgeml/v1/dev/dev-r/telemetry', '{"v":1}', { qos: 1 });

  const after = await waitFor('hub to count the invalid messages', async () => {
    const h = await getJson<HealthBody>(hub, '/healthz');
    return h.mqtt.invalid - before.mqtt.invalid === garbage.length + 1 && h;
  });
  t.is(after.devicesOnline, 1);
  t.is((await device(hub, 'dev-r')).status, 'never-connected', 'garbage did not make the rogue a device that announced itself');
  t.is((await device(hub, 'dev-g')).status, 'online');
  // The log line may reach the test after the counter does: it is waited for, not looked up.
  const dropLog = await hub.waitForLog('the drop logged with the field that failed', (l) => l.msg === 'dropped invalid mqtt message' && String(l.reason).includes('since'), 10_000);
  t.is(dropLog.deviceId, 'dev-r');
  t.true(hub.running, 'hub still running');
  t.true(agent.running, 'agent still running');
});

test('SIGTERM stops the agent promptly even when the hub has stopped answering', async (t) => {
  const hub = await startHub(t);
  const agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId: 'dev-f', token: await enrollDevice(hub, 'dev-f') });
  await waitFor('dev-f online', async () => (await device(hub, 'dev-f')).status === 'online');
  hub.child.kill('SIGSTOP');
  t.teardown(() => {
    hub.child.kill('SIGCONT');
  });
  const started = Date.now();
  const code = await agent.kill('SIGTERM');
  // The link gives up on the unacknowledged `offline` after 2 s; MQTT keepalive alone would take 45 s.
  t.is(code, 0);
  t.true(Date.now() - started < 15_000, `agent took ${Date.now() - started} ms to stop`);
  t.true(agent.logs.some((l) => l.msg === 'could not publish offline status; the broker will send the last will'));
});
