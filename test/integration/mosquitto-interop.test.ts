/**
 * The agent speaks plain MQTT 3.1.1: against Mosquitto (a real peer broker from Debian, started by
 * the rig) it announces a retained `online` status and Mosquitto delivers its last will on SIGKILL.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import mqtt from 'mqtt';
import { decodeMessage, type StatusMessage } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import { startAgent } from '../helpers/edgeml-process.js';
import { rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

test('agent status and last will work through Mosquitto', async (t) => {
  const url = `mqtt://${rig().mosquitto}`;
  // The rig's Mosquitto is shared by every run: a unique id keeps retained messages apart.
  const deviceId = `interop-${randomBytes(4).toString('hex')}`;
  const topic = deviceTopic(deviceId, 'status');
  const watcher = await mqtt.connectAsync(url, { clientId: `watch-${deviceId}`, reconnectPeriod: 0 });
  t.teardown(async () => {
    await watcher.publishAsync(topic, '', { qos: 1, retain: true }); // clear the retained status
    await watcher.endAsync();
    // The agent's persistent session would otherwise stay in the shared broker.
    const sweeper = await mqtt.connectAsync(url, { clientId: deviceId, clean: true, reconnectPeriod: 0 });
    await sweeper.endAsync();
  });
  const statuses: StatusMessage[] = [];
  watcher.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    const decoded = decodeMessage('status', payload);
    if (decoded.ok) statuses.push(decoded.value);
  });
  await watcher.subscribeAsync(topic, { qos: 1 });

  const agent = await startAgent(t, { mqttUrl: url, deviceId });
  const online = await waitFor('online status via mosquitto', () => statuses.find((s) => s.state === 'online'));
  t.is(online.state === 'online' && online.facts.agentVersion.length > 0, true);

  await agent.kill('SIGKILL');
  const will = await waitFor('last will via mosquitto', () => statuses.find((s) => s.state === 'offline'));
  t.deepEqual(will, { v: 1, state: 'offline', reason: 'lost' });
});
