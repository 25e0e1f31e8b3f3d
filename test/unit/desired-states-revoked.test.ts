/**
 * A revoked device's desired state (hub/fleet/desired-states.ts) leaves the broker's retained
 * messages and is not published again, neither by a sync nor by a starting hub's republish.
 */
import test from 'ava';
import { Memory } from 'lowdb';
import { pino } from 'pino';
import type { Broker } from '../../hub/broker/broker.js';
import { DesiredStates } from '../../hub/fleet/desired-states.js';
import { DeviceDirectory } from '../../hub/fleet/device-directory.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import { StoredProblems } from '../../hub/store/problems.js';
import { ManualClock } from '../helpers/fake-clock.js';

const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ops' };
const logger = pino({ level: 'silent' });

async function setup() {
  const store = await LowdbHubStore.open(new Memory<HubData>(), 'memory');
  await store.desired.renewEpoch();
  const devices = await DeviceDirectory.load(store.devices, new ManualClock(Date.parse('2026-11-24T12:00:00.000Z')), logger, new StoredProblems(logger));
  for (const id of ['kept', 'gone']) await devices.enroll({ id, labels: {} }, ACTOR);
  await store.desired.save(new Map(['kept', 'gone'].map((id) => [id, { generation: 3, services: [] }])));
  const published: Array<{ topic: string; payload: string; retain: boolean }> = [];
  const broker: Pick<Broker, 'publish'> = {
    publish: async (topic, payload, { retain }) => void published.push({ topic, payload: payload.toString(), retain }),
  };
  const load = () => DesiredStates.load({ repo: store.desired, deployments: store.deployments, devices, broker, problems: new StoredProblems(logger), logger });
  return { devices, published, load };
}

test("revocation clears the device's retained desired state, after the sync it causes", async (t) => {
  const { devices, published, load } = await setup();
  const desired = await load();
  await devices.revoke('gone');
  // What the hub does on a revocation (hub/main.ts): recompute the device, then forget it.
  const synced = desired.sync(['gone']);
  await desired.forget('gone');
  await synced;
  t.deepEqual(published, [{ topic: 'edgeml/v1/dev/gone/desired', payload: '', retain: true }]);
});

test('a starting hub republishes the states of active devices only', async (t) => {
  const { devices, published, load } = await setup();
  await devices.revoke('gone');
  await (await load()).republish();
  t.deepEqual(
    published.map((p) => p.topic),
    ['edgeml/v1/dev/kept/desired'],
  );
});
