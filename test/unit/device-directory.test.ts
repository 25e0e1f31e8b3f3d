/**
 * The hub's device directory (hub/fleet/device-directory.ts) over the lowdb store in memory and a
 * manual clock: enrollment and tokens, labels, revocation, statuses, and batched observations.
 */
import test from 'ava';
import { Memory } from 'lowdb';
import { pino } from 'pino';
import { DeviceDirectory, OBSERVATION_FLUSH_MS } from '../../hub/fleet/device-directory.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import { StoredProblems } from '../../hub/store/problems.js';
import { EdgemlError } from '../../shared/errors.js';
import type { DeviceFacts, ReportedState, StatusMessage } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';

const T0 = Date.parse('2026-11-24T12:00:00.000Z');
const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ops' };

function facts(hostname: string): DeviceFacts {
  return {
    hostname,
    platform: 'linux/arm64',
    arch: 'arm64',
    os: { distro: 'Debian', release: '12', kernel: '6.1.0' },
    cpus: 4,
    memoryBytes: 4 * 1024 ** 3,
    docker: { version: '26.1.5', apiVersion: '1.45', os: 'linux', arch: 'arm64' },
    agentVersion: '0.1.0',
  };
}

const online = (hostname: string): StatusMessage => ({ v: 1, state: 'online', since: '2026-11-24T11:59:00.000Z', facts: facts(hostname) });
const offline = (reason: 'lost' | 'shutdown'): StatusMessage => ({ v: 1, state: 'offline', reason });
const reported = (generation: number, phase: ReportedState['phase'] = 'converged'): ReportedState => ({
  v: 1,
  observedGeneration: generation,
  phase,
  services: [{ name: 'iris', revision: generation, image: `r/iris@sha256:${'1'.repeat(64)}`, phase: 'running', servingRevision: generation, progress: null, error: null }],
});

async function setup(memory = new Memory<HubData>()) {
  const clock = new ManualClock(T0);
  const store = await LowdbHubStore.open(memory, 'memory');
  let writes = 0;
  const save = store.devices.saveObservations.bind(store.devices);
  store.devices.saveObservations = async (batch) => {
    writes += 1;
    return save(batch);
  };
  const problems = new StoredProblems(pino({ level: 'silent' }));
  const dir = await DeviceDirectory.load(store.devices, clock, pino({ level: 'silent' }), problems);
  return { clock, dir, memory, problems, writes: () => writes };
}

test('enroll gives a token once; the store keeps only its hash; the device has never connected', async (t) => {
  const { dir, memory } = await setup();
  const enrolled = await dir.enroll({ id: 'gw-1', labels: { site: 'lab' } }, ACTOR);
  t.regex(enrolled.token, /^emd_[A-Za-z0-9_-]{43}$/);
  t.like(enrolled, { id: 'gw-1', status: 'never-connected', labels: { site: 'lab' }, lastSeen: null, facts: null, revokedAt: null, enrolledBy: ACTOR });
  t.false(JSON.stringify(await memory.read()).includes(enrolled.token.slice(4)), 'the token is not stored');
  t.false('token' in dir.get('gw-1'));
  t.false('tokenHash' in dir.get('gw-1'));
  const again = await t.throwsAsync(dir.enroll({ id: 'gw-1' }, ACTOR), { instanceOf: EdgemlError });
  t.is((again as EdgemlError).code, 'HUB_E_CONFLICT');
});

test('verifyToken: only the device own, unrevoked token', async (t) => {
  const { dir } = await setup();
  const a = await dir.enroll({ id: 'a' }, ACTOR);
  const b = await dir.enroll({ id: 'b' }, ACTOR);
  t.true(dir.verifyToken('a', a.token));
  t.false(dir.verifyToken('a', b.token), "another device's token");
  t.false(dir.verifyToken('a', `${a.token}x`));
  t.false(dir.verifyToken('a', ''));
  t.false(dir.verifyToken('nobody', a.token));
  const changes: string[] = [];
  dir.onChange((id, change) => changes.push(`${id} ${change}`));
  t.is((await dir.revoke('a')).status, 'revoked');
  await dir.updateLabels('b', { set: { site: 'x' } });
  t.deepEqual(changes, ['a revoked', 'b labels']);
  t.false(dir.verifyToken('a', a.token), 'a revoked token stops working');
  t.true(dir.verifyToken('b', b.token));
});

test('isActive: enrolled and not revoked', async (t) => {
  const { dir } = await setup();
  await dir.enroll({ id: 'a' }, ACTOR);
  t.true(dir.isActive('a'));
  t.false(dir.isActive('nobody'));
  await dir.revoke('a');
  t.false(dir.isActive('a'));
});

test('reported states are kept with the device, written in the observation batch, and survive a restart', async (t) => {
  const first = await setup();
  for (const id of ['a', 'b']) await first.dir.enroll({ id }, ACTOR);
  first.dir.applyStatus('a', online('box-a'));
  const before = first.writes();
  for (let generation = 1; generation <= 5; generation++) first.dir.applyReported('a', reported(generation, generation < 5 ? 'reconciling' : 'converged'));
  first.dir.applyReported('b', reported(2));
  first.dir.applyReported('stranger', reported(1));
  t.like(first.dir.get('a'), { observedGeneration: 5, phase: 'converged' });
  t.is(first.writes(), before, 'nothing is written per message');
  first.clock.advance(OBSERVATION_FLUSH_MS);
  await first.dir.flush();
  t.is(first.writes(), before + 1, 'one write for the statuses and reports of both devices');
  t.deepEqual((await first.memory.read())!.devices.a?.observed.reported, reported(5));

  const second = await setup(first.memory);
  t.like(second.dir.get('a'), { status: 'offline', observedGeneration: 5, phase: 'converged' });
  t.deepEqual(second.dir.get('a').services, reported(5).services);
  t.like(second.dir.get('b'), { observedGeneration: 2, phase: 'converged' });
  second.dir.applyStatus('a', online('box-a'));
  t.is(second.dir.get('a').observedGeneration, 5, 'coming back online keeps the state until the device reports again');
});

test('pull progress alone is not written: only a report that changes what a restarted hub needs', async (t) => {
  const { dir, clock, writes } = await setup();
  await dir.enroll({ id: 'a' }, ACTOR);
  const pulling = (current: number): ReportedState => ({
    ...reported(2, 'reconciling'),
    services: [{ ...reported(2).services[0]!, phase: 'pulling', servingRevision: 1, progress: { current, total: 100 } }],
  });
  dir.applyReported('a', pulling(10));
  clock.advance(OBSERVATION_FLUSH_MS);
  await dir.flush();
  const before = writes();
  for (const current of [20, 40, 80]) dir.applyReported('a', pulling(current));
  t.deepEqual(dir.get('a').services[0]?.progress, { current: 80, total: 100 }, 'the view has the newest progress');
  clock.advance(OBSERVATION_FLUSH_MS);
  await dir.flush();
  t.is(writes(), before, 'progress alone wrote nothing');
  dir.applyReported('a', reported(2));
  clock.advance(OBSERVATION_FLUSH_MS);
  await dir.flush();
  t.is(writes(), before + 1, 'the running service is written');
});

test('replicas: each service keeps the counts and last decision its device reported, through a restart; the /metrics gauges list them', async (t) => {
  const first = await setup();
  for (const id of ['a', 'b', 'old', 'gone']) await first.dir.enroll({ id }, ACTOR);
  const scaled = (ready: number): ReportedState => {
    const r = reported(3);
    const iris = { ...r.services[0]!, replicas: { desired: 3, ready, capacity: 'capacity: a replica needs 512 MiB, 300 MiB free' }, lastScale: { at: '2026-11-24T12:00:05.000Z', from: 1, to: 3, reason: 'load 2.4 per replica > 0.7 × maxConcurrent 1 over 5s' } };
    // `wine` is named twice by a confused agent: one gauge, the first entry's.
    const wine = { ...r.services[0]!, name: 'wine', replicas: { desired: 1, ready: 1 } };
    return { ...r, services: [wine, iris, { ...wine, replicas: { desired: 9, ready: 9 } }] };
  };
  first.dir.applyReported('a', scaled(1));
  first.clock.advance(OBSERVATION_FLUSH_MS);
  await first.dir.flush();
  const writes = first.writes();
  first.dir.applyReported('a', scaled(2));
  first.clock.advance(OBSERVATION_FLUSH_MS);
  await first.dir.flush();
  t.is(first.writes(), writes + 1, 'a replica becoming ready is worth a write');
  first.dir.applyReported('b', { ...reported(1), services: [{ ...reported(1).services[0]!, replicas: { desired: 1, ready: 0 } }] });
  first.dir.applyReported('old', reported(1));
  first.dir.applyReported('gone', scaled(3));
  await first.dir.revoke('gone');
  await first.dir.flush();

  const second = await setup(first.memory);
  const iris = second.dir.get('a').services.find((s) => s.name === 'iris');
  t.deepEqual(iris?.replicas, { desired: 3, ready: 2, capacity: 'capacity: a replica needs 512 MiB, 300 MiB free' });
  t.deepEqual(iris?.lastScale, { at: '2026-11-24T12:00:05.000Z', from: 1, to: 3, reason: 'load 2.4 per replica > 0.7 × maxConcurrent 1 over 5s' });
  t.false('replicas' in second.dir.get('old').services[0]!, 'an agent older than replicas: nothing made up');
  t.deepEqual(second.dir.serviceReplicas(), [
    { device: 'a', service: 'iris', desired: 3, ready: 2 },
    { device: 'a', service: 'wine', desired: 1, ready: 1 },
    { device: 'b', service: 'iris', desired: 1, ready: 0 },
  ], 'by device then service; the offline devices as they last reported, the revoked one and the old agent left out');
});

test('statuses: online records facts; offline keeps them; unknown devices are ignored', async (t) => {
  const { dir, clock } = await setup();
  await dir.enroll({ id: 'gw-1' }, ACTOR);
  dir.applyStatus('gw-1', online('box-1'));
  t.like(dir.get('gw-1'), { status: 'online', onlineSince: '2026-11-24T11:59:00.000Z', lastSeen: '2026-11-24T12:00:00.000Z', offlineReason: null });
  t.is(dir.onlineCount(), 1);
  clock.ms = T0 + 5000;
  dir.applyStatus('gw-1', offline('lost'));
  t.like(dir.get('gw-1'), { status: 'offline', offlineReason: 'lost', onlineSince: null, lastSeen: '2026-11-24T12:00:05.000Z' });
  t.is(dir.get('gw-1').facts?.hostname, 'box-1', 'facts outlive the connection');
  t.is(dir.onlineCount(), 0);
  dir.applyStatus('stranger', online('x'));
  t.throws(() => dir.get('stranger'), { instanceOf: EdgemlError, message: 'device stranger not found' });
});

test('observations are written in one batch after the flush delay, and at close', async (t) => {
  const { dir, clock, memory, writes } = await setup();
  for (const id of ['a', 'b', 'c']) await dir.enroll({ id }, ACTOR);
  const before = writes();
  for (const id of ['a', 'b', 'c']) dir.applyStatus(id, online(`box-${id}`));
  t.is(writes(), before, 'nothing is written per message');
  clock.advance(OBSERVATION_FLUSH_MS);
  await dir.flush();
  t.is(writes(), before + 1, 'one write for three devices');
  t.is((await memory.read())!.devices.b?.observed.status, 'online');
  dir.applyStatus('a', offline('shutdown'));
  await dir.close();
  t.is((await memory.read())!.devices.a?.observed.offlineReason, 'shutdown', 'close writes what is pending');
  t.is(clock.pending(), 0);
});

test('a restarted hub shows devices that were online as offline (lost) until they reconnect', async (t) => {
  const first = await setup();
  await first.dir.enroll({ id: 'gw-1', labels: { site: 'lab' } }, ACTOR);
  first.dir.applyStatus('gw-1', online('box'));
  await first.dir.close();
  const second = await setup(first.memory);
  t.like(second.dir.get('gw-1'), { status: 'offline', offlineReason: 'lost', labels: { site: 'lab' } });
  t.is(second.dir.get('gw-1').facts?.hostname, 'box');
});

test('labels: set and remove; list filters by labels and status, sorted by id', async (t) => {
  const { dir } = await setup();
  await dir.enroll({ id: 'b', labels: { site: 'lab', zone: '1' } }, ACTOR);
  await dir.enroll({ id: 'a', labels: { site: 'lab' } }, ACTOR);
  await dir.enroll({ id: 'constructor', labels: { site: 'field' } }, ACTOR);
  t.deepEqual((await dir.updateLabels('b', { set: { site: 'field', rack: '7' }, remove: ['zone'] })).labels, { site: 'field', rack: '7' });
  t.deepEqual(dir.list().map((d) => d.id), ['a', 'b', 'constructor']);
  t.deepEqual(dir.list({ labels: { site: 'field' } }).map((d) => d.id), ['b', 'constructor']);
  t.deepEqual(dir.list({ labels: { site: 'field', rack: '7' } }).map((d) => d.id), ['b']);
  t.deepEqual(dir.list({ labels: { toString: 'x' } }), [], 'prototype keys are not labels');
  dir.applyStatus('a', online('box'));
  t.deepEqual(dir.list({ status: 'online' }).map((d) => d.id), ['a']);
  await t.throwsAsync(dir.updateLabels('nope', { set: { a: 'b' } }), { instanceOf: EdgemlError });
});

test('views are copies: changing one does not change the directory', async (t) => {
  const { dir } = await setup();
  await dir.enroll({ id: 'gw-1', labels: { site: 'lab' } }, ACTOR);
  dir.applyStatus('gw-1', online('box'));
  const view = dir.get('gw-1');
  view.labels.site = 'changed';
  view.facts!.os.distro = 'changed';
  t.is(dir.get('gw-1').labels.site, 'lab');
  t.is(dir.get('gw-1').facts!.os.distro, 'Debian');
});

test('a damaged stored device is reported and left out; a damaged observation is cleared; the rest load', async (t) => {
  const { dir, memory } = await setup();
  await dir.enroll({ id: 'good', labels: { site: 'lab' } }, ACTOR);
  await dir.enroll({ id: 'no-hash', labels: {} }, ACTOR);
  await dir.enroll({ id: 'odd-facts', labels: {} }, ACTOR);
  await dir.close();
  const data = (await memory.read())!;
  (data.devices['no-hash'] as { tokenHash?: string }).tokenHash = undefined;
  (data.devices['odd-facts']!.observed as unknown as Record<string, unknown>).facts = { cpus: 'many' };
  (data.devices as Record<string, unknown>)['not-an-object'] = 42;
  await memory.write(data);

  const again = await setup(memory);
  t.deepEqual(
    again.dir.list().map((d) => d.id),
    ['good', 'odd-facts'],
  );
  t.like(again.dir.get('odd-facts'), { status: 'never-connected', facts: null });
  t.deepEqual(
    again.problems.list().map((p) => [p.kind, p.id]),
    [
      ['device', '(no id)'],
      ['device', 'no-hash'],
    ],
  );
  t.regex(again.problems.list().find((p) => p.id === 'no-hash')!.message, /tokenHash/);
  t.false(again.dir.verifyToken('no-hash', 'anything'));
  t.truthy((await memory.read())!.devices['no-hash'], 'the damaged record stays in the store for someone to fix');
});
