/**
 * Rotation of a service key on the hub (hub/fleet/deployments.ts, desired-states.ts) over the lowdb
 * store in memory and a manual clock: what the devices' desired states say about replaced keys, after
 * rotations in a row and after a hub restart.
 */
import test from 'ava';
import { Memory } from 'lowdb';
import { pino } from 'pino';
import type { Broker } from '../../hub/broker/broker.js';
import { Deployments, serviceKey } from '../../hub/fleet/deployments.js';
import { DesiredStates } from '../../hub/fleet/desired-states.js';
import { DeviceDirectory } from '../../hub/fleet/device-directory.js';
import type { RolloutController } from '../../hub/fleet/rollout-controller.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import { StoredProblems } from '../../hub/store/problems.js';
import type { DeploymentRecord } from '../../hub/store/store.js';
import { hashSecret } from '../../shared/secrets.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { waitFor } from '../helpers/wait.js';

const T0 = Date.parse('2026-12-07T12:00:00.000Z');
const AT = new Date(T0).toISOString();
const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ops' };
const IMAGE = `reg/iris@sha256:${'1'.repeat(64)}`;
const LIMITS = { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null };
const ORIGINAL = serviceKey('o'.repeat(43));
const logger = pino({ level: 'silent' });

function deployment(previousKeys?: DeploymentRecord['previousKeys']): DeploymentRecord {
  return {
    service: 'iris',
    revision: 1,
    image: IMAGE,
    digest: `sha256:${'1'.repeat(64)}`,
    build: null,
    models: [],
    target: { site: 'lab' },
    limits: LIMITS,
    keyId: ORIGINAL.keyId,
    keyHash: ORIGINAL.keyHash,
    stableRevision: 1,
    revisions: [{ revision: 1, image: IMAGE, digest: `sha256:${'1'.repeat(64)}`, build: null, models: [], limits: LIMITS, createdAt: AT }],
    assignments: {},
    rollout: { id: 1, kind: 'create', revision: 1, strategy: 'all-at-once', phase: 'succeeded', devices: ['gw-1'] },
    createdAt: AT,
    createdBy: ACTOR,
    updatedAt: AT,
    ...(previousKeys ? { previousKeys } : {}),
  };
}

/** A hub over `memory` as hub/main.ts wires it (without the broker's network): devices, desired states, deployments. */
async function hub(memory: Memory<HubData>, clock: ManualClock) {
  const store = await LowdbHubStore.open(memory, 'memory');
  await store.desired.renewEpoch();
  const devices = await DeviceDirectory.load(store.devices, clock, logger, new StoredProblems(logger));
  const broker: Pick<Broker, 'publish'> = { publish: async () => undefined };
  const desired = await DesiredStates.load({ repo: store.desired, deployments: store.deployments, devices, broker, problems: new StoredProblems(logger), clock, logger });
  const deployments = new Deployments({ deployments: store.deployments, images: store.images, devices, desired, rollouts: {} as RolloutController, clock, logger });
  return { store, devices, desired, deployments };
}

/** The hashes a device takes for the service now: its current key and the replaced ones it was given, within their grace. */
function takenHashes(desired: DesiredStates, now: number): string[] {
  const service = desired.get('gw-1')?.services.find((s) => s.name === 'iris');
  return service ? [service.keyHash, ...(service.previousKeys ?? []).filter((p) => Date.parse(p.until) > now).map((p) => p.keyHash)] : [];
}

test('rotate-key 1h then 0s: the first key leaves the desired state and the store at once', async (t) => {
  const clock = new ManualClock(T0);
  const { store, devices, desired, deployments } = await hub(new Memory<HubData>(), clock);
  await devices.enroll({ id: 'gw-1', labels: { site: 'lab' } }, ACTOR);
  await store.deployments.add(deployment());
  await desired.sync();

  const first = await deployments.rotateKey('iris', '1h', ACTOR);
  t.deepEqual(takenHashes(desired, clock.now()).sort(), [ORIGINAL.keyHash, hashSecret(first.key)].sort(), 'both within the first grace');
  const second = await deployments.rotateKey('iris', '0s', ACTOR);
  t.is(second.previousKeyValidUntil, null);
  t.deepEqual(takenHashes(desired, clock.now()), [hashSecret(second.key)], 'the key replaced first is refused too, though its grace had an hour left');
  t.false('previousKeys' in desired.get('gw-1')!.services[0]!);
  t.deepEqual((await store.deployments.get('iris'))!.previousKeys, []);
});

test('rotate-key 1h then 10m: the first key ends with the shorter grace', async (t) => {
  const clock = new ManualClock(T0);
  const { store, devices, desired, deployments } = await hub(new Memory<HubData>(), clock);
  await devices.enroll({ id: 'gw-1', labels: { site: 'lab' } }, ACTOR);
  await store.deployments.add(deployment());
  const first = await deployments.rotateKey('iris', '1h', ACTOR);
  await deployments.rotateKey('iris', '10m', ACTOR);
  const ends = new Date(T0 + 600_000).toISOString();
  t.deepEqual((await store.deployments.get('iris'))!.previousKeys, [
    { keyHash: ORIGINAL.keyHash, until: ends },
    { keyHash: hashSecret(first.key), until: ends },
  ]);
  clock.advance(600_000);
  await waitFor('the replaced keys dropped at the end of the grace', async () => (await store.deployments.get('iris'))!.previousKeys?.length === 0);
  await waitFor('the desired state without them', () => desired.get('gw-1')!.services[0]!.previousKeys === undefined);
});

test('a restarted hub gives devices only the replaced keys still within their grace, and drops each at its end', async (t) => {
  const memory = new Memory<HubData>();
  const live = { keyHash: 'a'.repeat(64), until: new Date(T0 + 600_000).toISOString() };
  const ended = { keyHash: 'b'.repeat(64), until: new Date(T0 - 1000).toISOString() };
  const before = await hub(memory, new ManualClock(T0 - 60_000));
  await before.devices.enroll({ id: 'gw-1', labels: { site: 'lab' } }, ACTOR);
  await before.store.deployments.add(deployment([ended, live]));
  await before.desired.sync();
  t.deepEqual(before.desired.get('gw-1')!.services[0]!.previousKeys, [ended, live], 'both within their grace before the restart');
  await before.devices.close();

  // The hub comes back after `ended` ended: its timer went with the old process.
  const clock = new ManualClock(T0);
  const { store, desired, deployments } = await hub(memory, clock);
  await desired.sync();
  t.deepEqual(desired.get('gw-1')!.services[0]!.previousKeys, [live], 'an ended key is left out of the recomputed state');
  await deployments.start();
  clock.advance(0);
  await waitFor('the ended key dropped from the store', async () => (await store.deployments.get('iris'))!.previousKeys?.length === 1);
  t.deepEqual((await store.deployments.get('iris'))!.previousKeys, [live]);

  const generation = desired.get('gw-1')!.generation;
  clock.advance(600_000);
  await waitFor('the live key dropped at its end', async () => (await store.deployments.get('iris'))!.previousKeys?.length === 0);
  await waitFor('the desired state without it', () => desired.get('gw-1')!.services[0]!.previousKeys === undefined);
  t.is(desired.get('gw-1')!.generation, generation + 1);
});
