/**
 * The hub's embedded broker (aedes on a real TCP port) with real mqtt.js clients.
 */
import { connect as tcpConnect } from 'node:net';
import test from 'ava';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { openBrokerAuth } from '../helpers/open-broker-auth.js';
import { startBroker } from '../../hub/broker/broker.js';
import { waitFor } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });

test('a subscriber that throws does not stop delivery or the broker', async (t) => {
  const broker = await startBroker({ listen: { host: '127.0.0.1', port: 0 }, auth: openBrokerAuth, logger });
  t.teardown(() => broker.close());
  const seen: string[] = [];
  await broker.subscribe('t/+', (topic) => {
    seen.push(topic);
    if (topic === 't/boom') throw new Error('handler bug');
  });
  const client = await mqtt.connectAsync(`mqtt://${broker.address}`, { clientId: 'c1', reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  await client.publishAsync('t/boom', 'x', { qos: 1 });
  await client.publishAsync('t/after', 'y', { qos: 1 });
  await waitFor('both messages delivered', () => seen.length === 2);
  t.deepEqual(seen, ['t/boom', 't/after']);
  t.true(client.connected);
});

test('close() returns promptly even with a connection that never sent CONNECT', async (t) => {
  const broker = await startBroker({ listen: { host: '127.0.0.1', port: 0 }, auth: openBrokerAuth, logger });
  const [host, port] = [broker.address.slice(0, broker.address.lastIndexOf(':')), Number(broker.address.split(':').pop())];
  const probe = tcpConnect(port, host);
  await new Promise((r) => probe.once('connect', r));
  const client = await mqtt.connectAsync(`mqtt://${broker.address}`, { clientId: 'c2', reconnectPeriod: 0 });
  const started = Date.now();
  await broker.close();
  // aedes' connect timeout is 30 s; without tracking sockets close() would wait for it.
  t.true(Date.now() - started < 10_000, `close took ${Date.now() - started} ms`);
  await waitFor('probe socket closed by the broker', () => probe.closed || probe.destroyed);
  await waitFor('client disconnected', () => !client.connected);
  await client.endAsync(true);
});
