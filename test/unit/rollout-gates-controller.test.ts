/**
 * The controller's half of the gates (hub/fleet/rollout-controller.ts): it measures when the engine
 * asks, stores the figures in the rollout record, and a breach in them aborts and rolls back (a
 * rollback without gates). A fake store, fleet and meter; the clock is driven by hand.
 */
import test from 'ava';
import { pino } from 'pino';
import type { DesiredStates } from '../../hub/fleet/desired-states.js';
import type { DeviceDirectory } from '../../hub/fleet/device-directory.js';
import { RolloutController } from '../../hub/fleet/rollout-controller.js';
import { GateMeasureError, type GateMeter } from '../../hub/fleet/rollout-gates-measure.js';
import type { DeploymentRecord, RolloutRecord, RolloutRepository } from '../../hub/store/store.js';
import type { RolloutGate, RolloutGates } from '../../shared/api/rollouts.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { waitFor } from '../helpers/wait.js';

const T0 = Date.parse('2026-12-07T12:00:00.000Z');
const S = 1000;
const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ops' };

/** Rollouts and one deployment in memory, with the repository's write semantics (clones in, clones out). */
function memoryRollouts(): RolloutRepository & { records: RolloutRecord[]; deployment: DeploymentRecord } {
  const records: RolloutRecord[] = [];
  const deployment = { service: 'iris', assignments: {}, rollout: null, stableRevision: 1 } as unknown as DeploymentRecord;
  return {
    records,
    deployment,
    async start(rollout, change, previous) {
      const record = { ...structuredClone(rollout), id: records.length + 1 };
      if (previous) previous.change(records.find((r) => r.id === previous.id)!, record.id);
      if ('update' in change) change.update(deployment, record.id);
      records.push(record);
      return { rollout: structuredClone(record), deployment: structuredClone(deployment) };
    },
    async update(id, change) {
      const r = records.find((x) => x.id === id)!;
      change(r, deployment);
      return { rollout: structuredClone(r), deployment: structuredClone(deployment) };
    },
    async get(id) {
      return structuredClone(records.find((r) => r.id === id));
    },
    async list(filter) {
      return structuredClone(records.filter((r) => (filter.service === undefined || r.service === filter.service) && (!filter.active || r.phase === 'running' || r.phase === 'paused')).reverse());
    },
  };
}

/** Devices report what the rollout assigned them at once: healthy on it. */
function fleet(repo: ReturnType<typeof memoryRollouts>) {
  return {
    get(id: string) {
      const revision = (repo.deployment.assignments as Record<string, number | null>)[id] ?? 1;
      return { id, status: 'online', labels: {}, services: [{ name: 'iris', revision, phase: 'running', servingRevision: revision, error: null }] };
    },
  } as unknown as DeviceDirectory;
}

async function setup(figures: (r: RolloutRecord, now: number) => RolloutGate[] | Promise<RolloutGate[]>, gates: RolloutGates = { p95: '250ms', minRequests: 10 }) {
  const clock = new ManualClock(T0);
  const repo = memoryRollouts();
  const asked: number[] = [];
  const measure: GateMeter = async (r, now) => (asked.push(now), figures(structuredClone(r) as RolloutRecord, now));
  const controller = new RolloutController({ rollouts: repo, devices: fleet(repo), desired: { sync: async () => undefined } as unknown as DesiredStates, clock, logger: pino({ level: 'silent' }), measure });
  const { rollout } = await controller.begin({
    kind: 'update', service: 'iris', revision: 2, fromRevision: 1, devices: new Map([['d1', 1], ['d2', 1]]), request: { strategy: 'canary', canary: '1', soak: '5s', gates },
    actor: ACTOR, deployment: { update: () => undefined },
  });
  /** A tick `ms` later. */
  const after = async (ms: number) => {
    clock.ms += ms;
    await controller.tick();
  };
  return { controller, repo, asked, rollout, after, clock };
}

const p95 = (value: number, ok: boolean, now: number, batch: number): RolloutGate => ({ name: 'p95', threshold: '250ms', value, baseline: 40, ok, requests: 30, checkedAt: new Date(now).toISOString(), batch });

test('after the soak the controller measures, stores the figures in the record, and the next step goes on from them', async (t) => {
  const { controller, repo, asked, rollout, after } = await setup((r, now) => [p95(60, true, now, r.batch)]);
  await after(S);
  t.deepEqual(asked, [], 'soaking: nothing measured');
  await after(5 * S);
  t.is(asked.length, 1, 'the soak is over: measured once');
  await waitFor('the figures to be stored', () => repo.records[0]!.gates !== undefined);
  t.like(repo.records[0]!.gates?.[0], { name: 'p95', value: 60, ok: true, batch: 0 });
  await after(S);
  const view = await controller.view(rollout.id);
  t.true(view.batch >= 1, 'went on to the next batch');
  t.like(view.gates?.[0], { name: 'p95', ok: true });
});

test('a breach in the measured figures aborts, names the gate and the values, and rolls back without gates', async (t) => {
  const { controller, repo, rollout, after } = await setup((r, now) => [p95(812, false, now, r.batch)]);
  await after(S);
  await after(5 * S);
  await waitFor('the figures to be stored', () => repo.records[0]!.gates !== undefined);
  await after(S);
  const aborted = await controller.view(rollout.id);
  t.is(aborted.phase, 'aborted');
  t.is(aborted.reason, 'gate p95 failed after batch 1: p95 812ms > 250ms (old revision 40ms)');
  t.like(aborted.gates?.[0], { value: 812, ok: false });
  const rollback = repo.records.find((r) => r.id === aborted.rolledBackBy)!;
  t.is(rollback.kind, 'rollback');
  t.is(rollback.options.gates, undefined, 'a rollback is not gated');
  t.deepEqual(Object.keys(rollback.devices), ['d1'], 'only the canary moved');
});

test('figures measured while the rollout stopped are not stored', async (t) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { repo, after, clock, controller, asked } = await setup(async (r, now) => (await gate, [p95(60, true, now, r.batch)]));
  await after(S);
  clock.ms += 5 * S;
  const ticking = controller.tick();
  // Measuring takes a while; meanwhile the rollout is aborted.
  await waitFor('the controller to measure', () => asked.length === 1);
  await repo.update(1, (r) => (r.phase = 'aborted'));
  release();
  await ticking;
  await controller.close();
  t.is(repo.records[0]!.gates, undefined);
});

test('ticks do not wait for a measurement; one per rollout is in flight at a time', async (t) => {
  let release: () => void = () => undefined;
  const slow = new Promise<void>((resolve) => (release = resolve));
  const { repo, after, asked, controller } = await setup(async (r, now) => (await slow, [p95(60, true, now, r.batch)]));
  await after(S);
  await after(5 * S);
  t.is(asked.length, 1, 'the measurement started; the tick returned without it');
  await after(500);
  await after(5 * S);
  t.is(asked.length, 1, 'no second measurement while the first is in flight');
  t.is(repo.records[0]!.batch, 0);
  release();
  await waitFor('the figures to be stored', () => repo.records[0]!.gates !== undefined);
  await after(500);
  t.is(repo.records[0]!.batch, 1);
  await controller.close();
});

test('a failing measurement backs off: 3 s, then doubling up to 30 s', async (t) => {
  let failures = 0;
  const { after, asked, controller } = await setup(async () => {
    failures += 1;
    throw new Error('archive unreadable');
  });
  await after(S);
  await after(5 * S);
  await waitFor('the first measurement to fail', () => failures === 1);
  const tries: number[] = [];
  for (let i = 0; i < 200; i++) {
    await after(500);
    await waitFor('the measurement to settle', () => failures === asked.length);
    if (tries.length < asked.length - 1) tries.push(asked.at(-1)! - asked.at(-2)!);
  }
  t.deepEqual(tries.slice(0, 5), [3000, 6000, 12_000, 24_000, 30_000]);
  await controller.close();
});

test('a gate abort does not write over a rollout another actor ended meanwhile, and starts no rollback', async (t) => {
  const { repo, after, controller } = await setup((r, now) => [p95(812, false, now, r.batch)]);
  await after(S);
  await after(5 * S);
  await waitFor('the figures to be stored', () => repo.records[0]!.gates !== undefined);
  // Between the step's read and its write, the rollout is superseded.
  const update = repo.update.bind(repo);
  repo.update = async (id, change) => {
    repo.update = update;
    repo.records[0]!.phase = 'superseded';
    return update(id, change);
  };
  await after(S);
  await after(S);
  t.is(repo.records[0]!.phase, 'superseded');
  t.is(repo.records.length, 1, 'no rollback of a superseded rollout');
  await controller.close();
});

test('abort refuses a rollout that ended while it was being read', async (t) => {
  const { repo, controller } = await setup((r, now) => [p95(60, true, now, r.batch)]);
  const get = repo.get.bind(repo);
  repo.get = async (id) => {
    const r = await get(id);
    repo.records[0]!.phase = 'aborted';
    return r;
  };
  await t.throwsAsync(controller.abort(1, ACTOR), { message: /rollout 1 is aborted/ });
  t.is(repo.records.length, 1);
  await controller.close();
});

test('a gate that could not be measured keeps its last figures; the others are stored', async (t) => {
  let calls = 0;
  const errorRate = (now: number): RolloutGate => ({ name: 'error-rate', threshold: '1%', value: 0, baseline: null, ok: null, requests: 3, checkedAt: new Date(now).toISOString(), batch: 0 });
  const { repo, after, controller } = await setup(async (_r, now) => {
    calls += 1;
    if (calls === 1) return [errorRate(now), { ...p95(60, true, now, 0), ok: null }];
    throw new GateMeasureError([errorRate(now)], [{ gate: 'p95', err: new Error('day file unreadable') }]);
  }, { errorRate: '1%', p95: '250ms', minRequests: 10 });
  await after(S);
  await after(5 * S);
  await waitFor('the first figures', () => repo.records[0]!.gates?.length === 2);
  const first = structuredClone(repo.records[0]!.gates!);
  await after(4 * S);
  await waitFor('the second measurement', () => calls === 2 && repo.records[0]!.gates![0]!.checkedAt !== first[0]!.checkedAt);
  t.deepEqual(repo.records[0]!.gates!.map((g) => g.name), ['error-rate', 'p95']);
  t.is(repo.records[0]!.gates![0]!.checkedAt, new Date(T0 + 10 * S).toISOString(), 'error-rate measured again');
  t.deepEqual(repo.records[0]!.gates![1], first[1], 'p95 kept from before');
  await controller.close();
});
