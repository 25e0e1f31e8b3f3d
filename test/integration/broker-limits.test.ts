/**
 * The hub's MQTT listener under hostile clients, on a real hub process: packets announced larger
 * than allowed (before CONNECT and after), connections piling up from one address without a
 * CONNECT, and a device that drops without a last will. Devices keep working meanwhile.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import type { DeviceTelemetry } from '../../shared/api/telemetry.js';
import { MAX_MESSAGE_BYTES } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api, deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { CONNACK, connectPacket, publishPacket, PUBACK, readPackets, remainingLength } from '../helpers/mqtt-wire.js';
import { metricsBatch } from '../helpers/telemetry-batches.js';
import { waitFor } from '../helpers/wait.js';
import { onlineStatus } from '../helpers/device-status.js';

const MB = 1024 * 1024;

async function rssBytes(hub: HubProcess): Promise<number> {
  const status = await readFile(`/proc/${hub.child.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

async function openSocket(t: ExecutionContext, hub: HubProcess): Promise<Socket & { closedAt?: number }> {
  const [host, port] = [hub.mqtt.slice(0, hub.mqtt.lastIndexOf(':')), Number(hub.mqtt.slice(hub.mqtt.lastIndexOf(':') + 1))];
  const socket: Socket & { closedAt?: number } = connect({ host, port });
  // The hub resets what it refuses: that is the expected outcome here, not a failure.
  socket.on('error', () => undefined);
  socket.once('close', () => (socket.closedAt = Date.now()));
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

/**
 * Sends `header` then filler, up to `total` bytes or until the hub closes the socket; true if the
 * hub closed it before everything was sent.
 */
async function flood(socket: Socket & { closedAt?: number }, header: Buffer, total: number): Promise<boolean> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  socket.write(header);
  for (let sent = header.length; sent < total && socket.closedAt === undefined; sent += chunk.length) {
    if (!socket.write(chunk.subarray(0, total - sent))) await Promise.race([once(socket, 'drain'), once(socket, 'close')]).catch(() => undefined);
  }
  return socket.closedAt !== undefined;
}

async function legitimateDevice(t: ExecutionContext, hub: HubProcess, id: string) {
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: await enrollDevice(hub, id), reconnectPeriod: 0, connectTimeout: 10_000 });
  t.teardown(() => client.endAsync(true));
  return client;
}

function recentBatch(id: string) {
  const to = Date.now() - 5_000;
  return metricsBatch({ id, from: new Date(to - 10_000).toISOString(), to: new Date(to).toISOString(), containers: [], services: {} });
}


test('CONNECTs announcing 250 MB are closed from their header: the hub stays small and a device connects and publishes meanwhile', async (t) => {
  const hub = await startHub(t);
  // Warm the paths a device uses before the baseline, so the baseline is not the hub before its first client.
  const warm = await legitimateDevice(t, hub, 'warm-up');
  await warm.publishAsync(deviceTopic('warm-up', 'telemetry'), JSON.stringify(recentBatch('warm-1')), { qos: 1 });
  const before = await rssBytes(hub);

  const announce250MB = Buffer.concat([Buffer.from([0x10]), remainingLength(250_000_000)]);
  const attackers = await Promise.all(Array.from({ length: 10 }, () => openSocket(t, hub)));
  const attack = Promise.all(attackers.map((s) => flood(s, announce250MB, 8 * MB)));
  const device = await legitimateDevice(t, hub, 'bystander');
  await device.publishAsync(deviceTopic('bystander', 'telemetry'), JSON.stringify(recentBatch('bystander-1')), { qos: 1 });
  const closedEarly = await attack;
  const after = await rssBytes(hub);

  t.deepEqual(closedEarly, attackers.map(() => true), 'the hub closed every attacking socket before it had sent its 8 MB');
  t.true(after - before < 50 * MB, `RSS grew by ${((after - before) / MB).toFixed(1)} MB`);
  const telemetry = await api<DeviceTelemetry>(hub, 'GET', '/api/v1/telemetry/devices/bystander?since=1h', { key: hub.adminKey });
  t.is(telemetry.body.samples, 1, "the bystander's batch is stored");
  t.true(device.connected);
});

test('after CONNECT, a packet up to the cap is taken and one announced past it closes the connection', async (t) => {
  const hub = await startHub(t);
  const id = 'big-sender';
  const token = await enrollDevice(hub, id);
  const socket = await openSocket(t, hub);
  const answers = readPackets(socket);
  socket.write(connectPacket({ clientId: id, username: id, password: token }));
  await waitFor('the CONNACK', () => answers.some((p) => p.type === CONNACK));

  // The largest message an agent may send (the hub drops it as not a batch, but takes and acknowledges it).
  socket.write(publishPacket({ topic: deviceTopic(id, 'telemetry'), payload: Buffer.alloc(MAX_MESSAGE_BYTES, 0x20), id: 1 }));
  await waitFor('the PUBACK of the largest message', () => answers.some((p) => p.type === PUBACK));
  t.is(socket.closedAt, undefined);

  // A well-formed PUBLISH of 300 KiB: past the default cap (257 KiB), nothing else wrong with it.
  const topic = Buffer.from(deviceTopic(id, 'telemetry'));
  const payload = 300 * 1024;
  const header = Buffer.concat([Buffer.from([0x32]), remainingLength(2 + topic.length + 2 + payload), Buffer.from([0, topic.length]), topic, Buffer.from([0, 2])]);
  await flood(socket, header, header.length + payload);
  await waitFor('the hub to close the connection', () => socket.closedAt !== undefined, 5_000);
  t.is(answers.filter((p) => p.type === PUBACK).length, 1, 'the oversized PUBLISH is not acknowledged');
});

test('connections waiting for CONNECT are bounded per address and in time; a device connects once they are gone', async (t) => {
  const hub = await startHub(t);
  const sockets = await Promise.all(Array.from({ length: 40 }, () => openSocket(t, hub)));
  const closed = () => sockets.filter((s) => s.closedAt !== undefined).length;
  await waitFor('the hub to close the connections past 32', () => closed() >= 8, 5_000);
  t.is(closed(), 8, 'only those past the limit are closed at once');
  // The others get the connect timeout.
  await waitFor('the hub to close idle connections', () => closed() === 40, 20_000);

  const device = await legitimateDevice(t, hub, 'after-the-storm');
  await device.publishAsync(deviceTopic('after-the-storm', 'status'), JSON.stringify(onlineStatus('after-the-storm')), { qos: 1, retain: true });
  t.true(device.connected);
});

test('a device that drops without a last will is marked offline (lost), and a clean shutdown keeps its reason', async (t) => {
  const hub = await startHub(t);
  const dropped = await legitimateDevice(t, hub, 'no-will');
  await dropped.publishAsync(deviceTopic('no-will', 'status'), JSON.stringify(onlineStatus('no-will')), { qos: 1, retain: true });
  await waitFor('no-will online', async () => (await deviceOf(hub, 'no-will')).status === 'online');
  dropped.stream.destroy();
  const lost = await waitFor('no-will offline', async () => {
    const d = await deviceOf(hub, 'no-will');
    return d.status === 'offline' && d;
  });
  t.is(lost.offlineReason, 'lost');
  const metrics = (await api<string>(hub, 'GET', '/metrics', { key: hub.adminKey })).body;
  t.regex(metrics, /^edgeml_devices_online 0$/m);

  const clean = await legitimateDevice(t, hub, 'clean-stop');
  await clean.publishAsync(deviceTopic('clean-stop', 'status'), JSON.stringify(onlineStatus('clean-stop')), { qos: 1, retain: true });
  await waitFor('clean-stop online', async () => (await deviceOf(hub, 'clean-stop')).status === 'online');
  await clean.publishAsync(deviceTopic('clean-stop', 'status'), JSON.stringify({ v: 1, state: 'offline', reason: 'shutdown' }), { qos: 1, retain: true });
  await clean.endAsync();
  await waitFor('no connection left', async () => /^edgeml_mqtt_connected_clients 0$/m.test((await api<string>(hub, 'GET', '/metrics', { key: hub.adminKey })).body));
  const stopped = await deviceOf(hub, 'clean-stop');
  t.is(stopped.status, 'offline');
  t.is(stopped.offlineReason, 'shutdown');
});
