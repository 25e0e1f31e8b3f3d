/**
 * Revocation at the hub's broker (aedes on a real TCP port, the device auth and ACL of
 * hub/broker/auth.ts, real mqtt.js clients) when the broker's own disconnect misses the device: a
 * revoke that lands while the device is still connecting, and a connection nobody dropped.
 */
import test from 'ava';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { hashSecret } from '../../shared/secrets.js';
import { deviceBrokerAuth, type BrokerAuth } from '../../hub/broker/auth.js';
import { startBroker, type Broker } from '../../hub/broker/broker.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'emd_token-of-gw-1';

/** One enrolled device, gw-1, revocable by the test without telling the broker. */
function fleet() {
  const revoked = new Set<string>();
  const isActive = (id: string) => id === 'gw-1' && !revoked.has(id);
  return { revoked, auth: deviceBrokerAuth({ isActive, verifyToken: (id, token) => isActive(id) && token === TOKEN, tokenHashValid: (id, hash) => isActive(id) && hash === hashSecret(TOKEN) }) };
}

function started(auth: BrokerAuth): Promise<Broker> {
  return startBroker({ listen: { host: '127.0.0.1', port: 0 }, auth, logger: pino({ level: 'silent' }) });
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}

test('a device revoked between authentication and registration is dropped once its CONNECT is answered', async (t) => {
  const { revoked, auth } = fleet();
  let broker: Broker | undefined;
  // The token checks out; then, before aedes registers the client, the device is revoked and the
  // broker told to drop it: at that moment there is no registered client to drop.
  const racing: BrokerAuth = {
    ...auth,
    authenticate: async (clientId, username, password) => {
      const identity = await auth.authenticate(clientId, username, password);
      revoked.add('gw-1');
      broker!.disconnect('gw-1');
      return identity;
    },
  };
  broker = await started(racing);
  t.teardown(() => broker.close());

  const client = mqtt.connect(`mqtt://${broker.address}`, { clientId: 'gw-1', username: 'gw-1', password: TOKEN, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  let dropped = false;
  client.once('close', () => (dropped = true));
  await waitFor('the connection to be dropped', () => dropped, 10_000);
  await waitFor('the broker to count no client', () => broker.connectedClients() === 0, 5000);
  t.false(client.connected);
});

test('revoke, then publish and subscribe on a connection nobody dropped: refused, and nothing is forwarded to it', async (t) => {
  const { revoked, auth } = fleet();
  const broker = await started(auth);
  t.teardown(() => broker.close());
  const atHub: string[] = [];
  await broker.subscribe('edgeml/v1/dev/+/status', (topic) => atHub.push(topic));

  const client = await mqtt.connectAsync(`mqtt://${broker.address}`, { clientId: 'gw-1', username: 'gw-1', password: TOKEN, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  const received: string[] = [];
  client.on('message', (topic) => received.push(topic));
  const [granted] = await client.subscribeAsync('edgeml/v1/dev/gw-1/desired', { qos: 1 });
  t.is(granted?.qos, 1);
  await client.publishAsync('edgeml/v1/dev/gw-1/status', '{}', { qos: 1 });
  await waitFor('the status to reach the hub', () => atHub.length === 1);

  revoked.add('gw-1');
  await broker.publish('edgeml/v1/dev/gw-1/desired', Buffer.from('{}'), { qos: 1, retain: false });
  const refused = await client.subscribeAsync('edgeml/v1/dev/gw-1/cmd', { qos: 1 }).then(
    ([grant]) => grant?.qos,
    (err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0],
  );
  t.is(refused, 128, 'a subscription after the revocation is refused');
  const dropped = closed(client);
  client.publish('edgeml/v1/dev/gw-1/status', '{}', { qos: 1 });
  await dropped;
  t.deepEqual(atHub, ['edgeml/v1/dev/gw-1/status'], 'the publish after the revocation did not reach the hub');
  t.deepEqual(received, [], 'the desired state published after the revocation was not forwarded');
});
