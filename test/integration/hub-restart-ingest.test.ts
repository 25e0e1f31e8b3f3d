/**
 * A device that reconnects at the first instant a restarted hub's MQTT port opens: what the hub
 * acknowledges it has stored, and the status the device announced is not lost. A real hub process;
 * the device's packets go out pipelined behind its CONNECT on the first socket the port accepts.
 */
import { connect, type Socket } from 'node:net';
import test from 'ava';
import type { DeviceTelemetry } from '../../shared/api/telemetry.js';
import { deviceTopic } from '../../shared/topics.js';
import { spawnEdgeml, startHub } from '../helpers/edgeml-process.js';
import { api, deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { metricsBatch } from '../helpers/telemetry-batches.js';
import { CONNACK, connectPacket, publishPacket, PUBACK, readPackets } from '../helpers/mqtt-wire.js';
import { waitFor } from '../helpers/wait.js';
import { onlineStatus } from '../helpers/device-status.js';

const DEVICE = 'early-bird';

function attempt(host: string, port: number): Promise<Socket | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', () => resolve(null));
  });
}

/** Tries to connect back to back until the port accepts (bounded by time and by the process still running). */
async function firstSocket(hub: { running: boolean }, host: string, port: number, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && hub.running) {
    const socket = await attempt(host, port);
    if (socket) return socket;
  }
  throw new Error(`${host}:${port} did not accept a connection within ${timeoutMs} ms`);
}


test('a device connecting the instant a restarted hub opens its port: its acknowledged batch is stored once and it shows online', async (t) => {
  const first = await startHub(t);
  const token = await enrollDevice(first, DEVICE);
  const mqttPort = Number(first.mqtt.split(':').at(-1));
  t.is(await first.kill('SIGTERM'), 0);

  // Again on the port the first hub got from the system: the device knows where its hub is.
  const restarted = spawnEdgeml(t, ['hub', 'start', '--data', first.data, '--http', '127.0.0.1:0', '--mqtt', `127.0.0.1:${mqttPort}`]);
  const socket = await firstSocket(restarted, '127.0.0.1', mqttPort, 60_000);
  t.teardown(() => socket.destroy());
  const answers = readPackets(socket);
  const to = Date.now() - 5_000;
  const batch = metricsBatch({ id: 'early-1', from: new Date(to - 10_000).toISOString(), to: new Date(to).toISOString(), containers: [], services: {} });
  // What the agent sends on connect (status retained, then its backlog), pipelined behind the
  // CONNECT so that it reaches the hub at the earliest moment a device's packets can.
  socket.write(
    Buffer.concat([
      connectPacket({ clientId: DEVICE, username: DEVICE, password: token }),
      publishPacket({ topic: deviceTopic(DEVICE, 'status'), payload: JSON.stringify(onlineStatus(DEVICE)), id: 1, retain: true }),
      publishPacket({ topic: deviceTopic(DEVICE, 'telemetry'), payload: JSON.stringify(batch), id: 2 }),
    ]),
  );
  await waitFor('the CONNACK and both PUBACKs', () => answers.filter((p) => p.type === PUBACK).length === 2, 60_000);
  t.deepEqual(answers[0], { type: CONNACK, body: Buffer.from([0, 0]) });

  const ready = await restarted.waitForLog('hub ready', (l) => l.msg === 'hub ready', 60_000);
  const hub = { url: `http://${String(ready.http)}`, adminKey: first.adminKey };
  const telemetry = await api<DeviceTelemetry>(hub, 'GET', `/api/v1/telemetry/devices/${DEVICE}?since=1h`, { key: hub.adminKey });
  t.is(telemetry.status, 200);
  t.is(telemetry.body.samples, 1, 'the acknowledged batch is stored, once');
  t.is(telemetry.body.latest?.to, batch.to);
  const device = await deviceOf(hub, DEVICE);
  t.is(device.status, 'online', `the device is connected and said so (the hub says ${device.status} ${device.offlineReason ?? ''})`);
  t.false(socket.destroyed);
});
