/**
 * The agent speaks plain MQTT 3.1.1: against Mosquitto (a real peer broker from Debian, started by
 * the rig) it announces a retained `online` status and Mosquitto delivers its last will on SIGKILL.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import mqtt from 'mqtt';
import { decodeMessage, type ReportedState, type StatusMessage } from '../../shared/protocol.js';
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

test('garbage on the agent topics (cmd, desired) is dropped and counted; the agent keeps answering', async (t) => {
  // Against Mosquitto, which has no per-device ACL: here anyone can publish on the agent's topics.
  const url = `mqtt://${rig().mosquitto}`;
  const deviceId = `garbage-${randomBytes(4).toString('hex')}`;
  const rogue = await mqtt.connectAsync(url, { clientId: `rogue-${deviceId}`, reconnectPeriod: 0 });
  t.teardown(async () => {
    await rogue.publishAsync(deviceTopic(deviceId, 'status'), '', { qos: 1, retain: true });
    await rogue.endAsync();
    const sweeper = await mqtt.connectAsync(url, { clientId: deviceId, clean: true, reconnectPeriod: 0 });
    await sweeper.endAsync();
  });
  const agent = await startAgent(t, { mqttUrl: url, deviceId });
  await agent.waitForLog('online announced', (l) => l.msg === 'connected to hub');
  // The agent subscribes right after connecting; a ping answered proves it is listening.
  await rogue.subscribeAsync([deviceTopic(deviceId, 'cmd/ack'), deviceTopic(deviceId, 'reported')], { qos: 1 });
  const acks: Array<Record<string, unknown>> = [];
  const reports: ReportedState[] = [];
  rogue.on('message', (topic, payload) => {
    if (topic.endsWith('/cmd/ack')) acks.push(JSON.parse(payload.toString()) as Record<string, unknown>);
    if (topic.endsWith('/reported')) {
      const decoded = decodeMessage('reported', payload);
      if (decoded.ok) reports.push(decoded.value);
    }
  });
  await waitFor('the agent to answer a first ping', async () => {
    await rogue.publishAsync(deviceTopic(deviceId, 'cmd'), JSON.stringify({ v: 1, id: 'warm', name: 'ping' }), { qos: 1 });
    return acks.some((a) => a.id === 'warm');
  });

  for (const payload of ['{{{', '{"v":1,"id":"x","name":"rm -rf"}', '{"v":1,"name":"ping"}']) {
    await rogue.publishAsync(deviceTopic(deviceId, 'cmd'), payload, { qos: 1 });
  }
  for (const payload of ['', '{"v":1,"generation":-1,"services":[]}', '{"v":1,"generation":1,"services":[{"name":"../x","image":"i"}]}']) {
    await rogue.publishAsync(deviceTopic(deviceId, 'desired'), payload, { qos: 1 });
  }
  await waitFor('the agent logs each drop', () => agent.logs.filter((l) => l.msg === 'dropped invalid mqtt message').length === 6);
  await rogue.publishAsync(deviceTopic(deviceId, 'cmd'), JSON.stringify({ v: 1, id: 'p1', name: 'ping' }), { qos: 1 });
  const answer = await waitFor('the ping answer', () => acks.find((a) => a.id === 'p1'));
  t.is(answer.ok, true);
  t.is((answer.result as { invalidMessages: number }).invalidMessages, 6);
  t.is((answer.result as { generation: number | null }).generation, null, 'no garbage desired state was accepted');
  const told = await waitFor('the agent to report the dropped desired state', () => reports.find((r) => r.error?.code === 'EDGEML_E_MESSAGE_INVALID'));
  t.regex(told.error!.message, /^a desired state was dropped: /);
  t.true(agent.running);
});
