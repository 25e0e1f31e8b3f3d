/**
 * The hub's device directory (hub/fleet/device-directory.ts) over the lowdb store in memory and a
 * manual clock: enrollment and tokens, labels, revocation, statuses, and batched observations.
 */
import test from 'ava';
import { Memory } from 'lowdb';
import { pino } from 'pino';
import { MAX_PREVIOUS_SECRETS } from '../../hub/auth/secret-rotation.js';
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

/** The expiry's store write (lowdb in memory) is done once the pending promise jobs have run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

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
  return { clock, dir, memory, problems, store, writes: () => writes };
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

test('rotateToken: the old and the new token both work during the grace; at its end only the new, and listeners hear token-expired', async (t) => {
  const { clock, dir, memory } = await setup();
  const enrolled = await dir.enroll({ id: 'gw-1' }, ACTOR);
  const changes: string[] = [];
  dir.onChange((id, change) => changes.push(`${id} ${change}`));
  clock.advance(1000);
  const rotated = await dir.rotateToken('gw-1', '10m', ACTOR);
  t.regex(rotated.token, /^emd_[A-Za-z0-9_-]{43}$/);
  t.not(rotated.token, enrolled.token);
  t.is(rotated.previousValidUntil, new Date(T0 + 1000 + 600_000).toISOString());
  t.deepEqual(rotated.rotations, [{ at: new Date(T0 + 1000).toISOString(), by: ACTOR, previousValidUntil: rotated.previousValidUntil }]);
  t.false(JSON.stringify(await memory.read()).includes(rotated.token.slice(4)), 'the new token is not stored');
  t.false('previousTokens' in dir.get('gw-1'));

  t.true(dir.verifyToken('gw-1', enrolled.token), 'the old token within its grace');
  t.true(dir.verifyToken('gw-1', rotated.token));
  clock.advance(600_000 - 1);
  t.true(dir.verifyToken('gw-1', enrolled.token), 'the old token on the last millisecond of its grace');
  t.deepEqual(changes, []);
  clock.advance(1);
  t.false(dir.verifyToken('gw-1', enrolled.token), 'the old token after its grace');
  t.true(dir.verifyToken('gw-1', rotated.token));
  await settled();
  t.deepEqual(changes, ['gw-1 token-expired']);
  const stored = (await memory.read())?.devices['gw-1'];
  t.deepEqual(stored?.previousTokens, [], 'the expired token is dropped from the store');
  t.deepEqual(dir.get('gw-1').rotations, rotated.rotations);
});

test('rotateToken with grace 0s: the old token stops at once, token-expired at once; a revoked device cannot rotate (409)', async (t) => {
  const { dir } = await setup();
  const enrolled = await dir.enroll({ id: 'gw-1' }, ACTOR);
  const changes: string[] = [];
  dir.onChange((id, change) => changes.push(`${id} ${change}`));
  const rotated = await dir.rotateToken('gw-1', '0s', ACTOR);
  t.is(rotated.previousValidUntil, null);
  t.false(dir.verifyToken('gw-1', enrolled.token));
  t.true(dir.verifyToken('gw-1', rotated.token));
  t.deepEqual(changes, ['gw-1 token-expired']);

  await dir.revoke('gw-1');
  const refused = await t.throwsAsync(dir.rotateToken('gw-1', '10m', ACTOR), { instanceOf: EdgemlError });
  t.is((refused as EdgemlError).code, 'HUB_E_CONFLICT');
  t.is((refused as EdgemlError).httpStatus, 409);
  t.is(dir.get('gw-1').rotations?.length, 1, 'nothing recorded');
  t.is(((await t.throwsAsync(dir.rotateToken('nobody', '10m', ACTOR), { instanceOf: EdgemlError })) as EdgemlError).httpStatus, 404);
  t.is(((await t.throwsAsync(dir.enroll({ id: 'gw-2' }, ACTOR).then(() => dir.rotateToken('gw-2', '8d', ACTOR)), { instanceOf: EdgemlError })) as EdgemlError).httpStatus, 400);
});

test('the device view carries no certificates (the issuer writes them to the store: a copy here would be stale)', async (t) => {
  const { dir, store } = await setup();
  await dir.enroll({ id: 'gw-1' }, ACTOR);
  await store.devices.update('gw-1', (r) => void (r.certificates = [{ serial: '0a', purpose: 'client', names: ['gw-1'], notBefore: new Date(T0).toISOString(), notAfter: new Date(T0 + 86_400_000).toISOString() }]));
  const again = await DeviceDirectory.load(store.devices, new ManualClock(T0), pino({ level: 'silent' }), new StoredProblems(pino({ level: 'silent' })));
  t.false('certificates' in again.get('gw-1'));
  t.false('certificates' in again.list()[0]!);
  t.is((await store.devices.get('gw-1'))?.certificates?.length, 1, 'the store has them');
});

test('rotateToken 1h then 0s: the first token is refused at once too, and token-expired is heard at once', async (t) => {
  const { dir, memory } = await setup();
  const enrolled = await dir.enroll({ id: 'gw-1' }, ACTOR);
  const changes: string[] = [];
  dir.onChange((id, change) => changes.push(`${id} ${change}`));
  const first = await dir.rotateToken('gw-1', '1h', ACTOR);
  t.deepEqual(changes, []);
  const second = await dir.rotateToken('gw-1', '0s', ACTOR);
  t.false(dir.verifyToken('gw-1', enrolled.token), 'the token replaced first, though its own grace runs for an hour');
  t.false(dir.verifyToken('gw-1', first.token));
  t.true(dir.verifyToken('gw-1', second.token));
  t.deepEqual(changes, ['gw-1 token-expired']);
  t.deepEqual((await memory.read())?.devices['gw-1']?.previousTokens, []);
});

test('rotateToken 1h then 10m: the first token ends with the second grace; a token pushed out by MAX_PREVIOUS_SECRETS is token-expired', async (t) => {
  const { clock, dir } = await setup();
  const enrolled = await dir.enroll({ id: 'gw-1' }, ACTOR);
  const changes: string[] = [];
  dir.onChange((id, change) => changes.push(`${id} ${change}`));
  const first = await dir.rotateToken('gw-1', '1h', ACTOR);
  const second = await dir.rotateToken('gw-1', '10m', ACTOR);
  clock.advance(600_000 - 1);
  t.true(dir.verifyToken('gw-1', enrolled.token));
  clock.advance(1);
  t.false(dir.verifyToken('gw-1', enrolled.token), 'capped at the end of the shorter grace');
  t.false(dir.verifyToken('gw-1', first.token));
  await settled();
  t.deepEqual(changes, ['gw-1 token-expired']);

  const tokens = [];
  for (let i = 0; i < MAX_PREVIOUS_SECRETS; i++) tokens.push((await dir.rotateToken('gw-1', '1h', ACTOR)).token);
  t.deepEqual(changes, ['gw-1 token-expired'], 'MAX_PREVIOUS_SECRETS replaced tokens all fit');
  await dir.rotateToken('gw-1', '1h', ACTOR);
  t.deepEqual(changes, ['gw-1 token-expired', 'gw-1 token-expired'], 'the oldest was pushed out within its grace');
  t.false(dir.verifyToken('gw-1', second.token), 'the oldest replaced token');
  t.true(dir.verifyToken('gw-1', tokens[0]!));
});

test('a restarted hub keeps a pending grace: the old token works until its end, then token-expired; a grace that ended while it was down expires at once', async (t) => {
  const memory = new Memory<HubData>();
  const first = await setup(memory);
  const a = await first.dir.enroll({ id: 'a' }, ACTOR);
  const b = await first.dir.enroll({ id: 'b' }, ACTOR);
  await first.dir.rotateToken('a', '10m', ACTOR);
  await first.dir.rotateToken('b', '1s', ACTOR);
  await first.dir.close();

  const clock = new ManualClock(T0 + 5000);
  const store = await LowdbHubStore.open(memory, 'memory');
  const dir = await DeviceDirectory.load(store.devices, clock, pino({ level: 'silent' }), new StoredProblems(pino({ level: 'silent' })));
  const changes: string[] = [];
  dir.onChange((id, change) => changes.push(`${id} ${change}`));
  t.true(dir.verifyToken('a', a.token), "a's old token, within its grace");
  t.false(dir.verifyToken('b', b.token), "b's old token, after its grace");
  clock.advance(0);
  await settled();
  t.deepEqual(changes, ['b token-expired']);
  clock.advance(600_000);
  await settled();
  t.false(dir.verifyToken('a', a.token));
  t.deepEqual(changes, ['b token-expired', 'a token-expired']);
  t.is(clock.pending(), 0, 'no timer left once every grace ended');
});

test('stored records with previous tokens, rotations and certificates load; a damaged previous token leaves the device out', async (t) => {
  const memory = new Memory<HubData>();
  const first = await setup(memory);
  await first.dir.enroll({ id: 'ok' }, ACTOR);
  await first.dir.enroll({ id: 'bad' }, ACTOR);
  await first.dir.rotateToken('ok', '10m', ACTOR);
  await first.dir.close();
  const data = structuredClone((await memory.read())!);
  data.devices.ok!.certificates = [{ serial: '01', purpose: 'client', names: ['ok'], notBefore: '2026-11-24T12:00:00.000Z', notAfter: '2026-12-24T12:00:00.000Z' }];
  data.devices.bad!.previousTokens = [{ hash: 'not hex', validUntil: '2026-11-24T12:10:00.000Z' }];
  await memory.write(data);
  const again = await setup(memory);
  t.deepEqual(
    again.dir.list().map((d) => d.id),
    ['ok'],
  );
  t.is(again.dir.get('ok').rotations?.length, 1);
  t.is(again.problems.list().length, 1);
});
