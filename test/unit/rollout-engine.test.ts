/** The rollout state machine (hub/fleet/rollout-engine.ts): batches, soak, gates, thresholds, offline devices. */
import test from 'ava';
import { advance, devicePhase, planBatches, resolveOptions, resume, shareOf, type DeviceView, type HealthGate } from '../../hub/fleet/rollout-engine.js';
import type { RolloutRecord } from '../../hub/store/store.js';
import type { RolloutRequest } from '../../shared/api/rollouts.js';

const T0 = Date.parse('2026-11-24T00:00:00.000Z');
const S = 1000;

function rollout(ids: string[], request: RolloutRequest, to = 2, from: number | null = 1): RolloutRecord {
  const { strategy, options } = resolveOptions(request);
  const batches = planBatches(ids, strategy, options);
  const devices: RolloutRecord['devices'] = {};
  batches.forEach((b, batch) => b.forEach((id) => (devices[id] = { batch, from, to, state: 'waiting', movedAt: null, deadline: null, doneAt: null, error: null })));
  const at = new Date(T0).toISOString();
  return {
    id: 1, service: 'iris', kind: 'update', revision: to, fromRevision: from, strategy, options, phase: 'running', reason: null,
    batchCount: batches.length, batch: 0, soakUntil: null, rolledBackBy: null, rollbackOf: null, devices, createdAt: at, updatedAt: at, finishedAt: null, createdBy: null,
  };
}

/** A fleet the test controls: what each device reports. */
function fleet(ids: string[]) {
  const views = new Map<string, DeviceView>(ids.map((id) => [id, { online: true, service: { revision: 1, phase: 'running', servingRevision: 1, error: null } }]));
  return {
    view: (id: string) => views.get(id)!,
    healthy: (id: string, revision = 2) => views.set(id, { online: true, service: { revision, phase: 'running', servingRevision: revision, error: null } }),
    failed: (id: string) => views.set(id, { online: true, service: { revision: 2, phase: 'failed', servingRevision: 1, error: { code: 'AGENT_E_HEALTH_FAILED', message: 'not healthy within 3 s' } } }),
    rejected: (id: string) => views.set(id, { online: true, service: { revision: 2, phase: 'rejected', servingRevision: 1, error: { code: 'AGENT_E_PLATFORM_UNAVAILABLE', message: 'no linux/arm64 image' } } }),
    offline: (id: string) => views.set(id, { ...views.get(id)!, online: false }),
  };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `d${i + 1}`);
const moving = (r: RolloutRecord) => Object.entries(r.devices).filter(([, d]) => d.state === 'moving').map(([id]) => id).sort();

test('shares: counts, and percentages rounded up', (t) => {
  t.is(shareOf('3', 10), 3);
  t.is(shareOf('25%', 10), 3);
  t.is(shareOf('10%', 1000), 100);
  t.is(shareOf('0', 10), 0);
  t.is(shareOf('5%', 1000), 50);
});

test('batches: a canary of at least one device, then the rest in batches; all-at-once is one batch', (t) => {
  const six = ids(6);
  t.deepEqual(planBatches(six, 'canary', resolveOptions({ strategy: 'canary', canary: '10%', batchSize: '2' }).options), [['d1'], ['d2', 'd3'], ['d4', 'd5'], ['d6']]);
  t.deepEqual(planBatches(six, 'batches', resolveOptions({ strategy: 'batches', batchSize: '50%' }).options), [['d1', 'd2', 'd3'], ['d4', 'd5', 'd6']]);
  t.deepEqual(planBatches(six, 'all-at-once', resolveOptions().options), [six]);
  t.deepEqual(planBatches([], 'canary', resolveOptions({ strategy: 'canary' }).options), []);
});

test('batches by rank, then by id: a retarget plans the devices it adds before the ones it takes away', (t) => {
  const leaving = new Set(['d1', 'd3']);
  const rank = (id: string) => (leaving.has(id) ? 1 : 0);
  const one = resolveOptions({ strategy: 'batches', batchSize: '1' }).options;
  // Given out of order: the plan does not depend on how the caller lists them.
  t.deepEqual(planBatches(['d4', 'd3', 'd1', 'd2'], 'batches', one, rank), [['d2'], ['d4'], ['d1'], ['d3']]);
  t.deepEqual(planBatches(['d4', 'd3', 'd1', 'd2'], 'batches', resolveOptions({ strategy: 'batches', batchSize: '3' }).options, rank), [['d2', 'd4', 'd1'], ['d3']]);
  t.deepEqual(planBatches(['d4', 'd3', 'd1', 'd2'], 'batches', one), [['d1'], ['d2'], ['d3'], ['d4']], 'no rank: by id alone');
});

test('the next batch moves only once every device of the current one is healthy, in order', (t) => {
  const f = fleet(ids(4));
  const r = rollout(ids(4), { strategy: 'batches', batchSize: '2' });
  const first = advance(r, f.view, T0);
  t.deepEqual([...first.assign], [['d1', 2], ['d2', 2]]);
  f.healthy('d1');
  t.is(advance(r, f.view, T0 + S).assign.size, 0, 'd2 is not healthy yet');
  f.healthy('d2');
  t.deepEqual([...advance(r, f.view, T0 + 2 * S).assign.keys()], ['d3', 'd4']);
  f.healthy('d3');
  f.healthy('d4');
  advance(r, f.view, T0 + 3 * S);
  t.is(r.phase, 'succeeded');
  t.truthy(r.finishedAt);
});

test('canary: the canary soaks before the rest go', (t) => {
  const f = fleet(ids(3));
  const r = rollout(ids(3), { strategy: 'canary', canary: '1', batchSize: '2', soak: '60s' });
  t.deepEqual([...advance(r, f.view, T0).assign.keys()], ['d1']);
  f.healthy('d1');
  t.is(advance(r, f.view, T0 + S).assign.size, 0);
  t.is(r.soakUntil, new Date(T0 + 61 * S).toISOString());
  t.is(advance(r, f.view, T0 + 60 * S).assign.size, 0, 'still soaking');
  t.deepEqual([...advance(r, f.view, T0 + 61 * S).assign.keys()], ['d2', 'd3']);
  t.is(r.soakUntil, null);
});

test('a failed gate after the soak aborts', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { strategy: 'canary', canary: '1', soak: '1s' });
  advance(r, f.view, T0);
  f.healthy('d1');
  advance(r, f.view, T0 + S);
  const gate = { name: 'p95-latency', check: () => ({ ok: false as const, reason: 'p95 820 ms > 500 ms' }) };
  t.is(advance(r, f.view, T0 + 3 * S, [gate]).abort, 'gate p95-latency failed after batch 1: p95 820 ms > 500 ms');
});

test('failures up to the threshold are tolerated; one more aborts, naming the first', (t) => {
  const f = fleet(ids(4));
  const r = rollout(ids(4), { strategy: 'all-at-once', maxFailures: '1', deviceTimeout: '10s' });
  advance(r, f.view, T0);
  f.healthy('d1');
  f.failed('d2');
  f.rejected('d3');
  f.healthy('d4');
  t.is(advance(r, f.view, T0 + S).abort, null, 'd3 was rejected (final); d2 is retried until its deadline');
  t.is(advance(r, f.view, T0 + 11 * S).abort, '2 of 4 devices failed (the rollout tolerates 1); first: d2: not healthy within 10s (last: AGENT_E_HEALTH_FAILED: not healthy within 3 s)');
});

test('a device that reported failed within its deadline is retrying: it holds the rollout, and healthy on a retry it counts as healthy', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { deviceTimeout: '60s' });
  advance(r, f.view, T0);
  f.healthy('d1');
  f.failed('d2');
  advance(r, f.view, T0 + S);
  t.is(r.phase, 'running', 'the agent retries d2 with backoff: the rollout is not done');
  t.is(r.devices.d2!.state, 'moving');
  t.is(r.devices.d2!.error, 'AGENT_E_HEALTH_FAILED: not healthy within 3 s');
  t.is(devicePhase(r.devices.d2!, f.view('d2'), false), 'retrying');
  advance(r, f.view, T0 + 59 * S);
  t.is(r.phase, 'running', 'still within its deadline');
  f.healthy('d2');
  advance(r, f.view, T0 + 60 * S);
  t.is(r.phase, 'succeeded');
  t.like(r.devices.d2, { state: 'healthy', error: null });
});

test('a retrying device holds the next batch until it is healthy or past its deadline', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { strategy: 'batches', batchSize: '1', maxFailures: '1', deviceTimeout: '30s' });
  advance(r, f.view, T0);
  f.failed('d1');
  t.is(advance(r, f.view, T0 + 10 * S).assign.size, 0, 'd1 may still get healthy');
  t.deepEqual([...advance(r, f.view, T0 + 31 * S).assign.keys()], ['d2'], 'd1 failed (tolerated): the rollout goes on');
  t.is(r.devices.d1!.state, 'failed');
});

test('a rollout that ends with failed devices ends completed-with-failures, naming them', (t) => {
  const f = fleet(ids(3));
  const r = rollout(ids(3), { deviceTimeout: '60s' });
  advance(r, f.view, T0);
  f.healthy('d1');
  f.failed('d2');
  f.rejected('d3');
  advance(r, f.view, T0 + S);
  t.is(r.phase, 'running');
  advance(r, f.view, T0 + 61 * S);
  t.is(r.phase, 'completed-with-failures');
  t.is(r.finishedAt, new Date(T0 + 61 * S).toISOString());
  t.is(r.reason, '2 of 3 devices failed (the rollout tolerates 3): d2, d3');
  t.is(devicePhase(r.devices.d2!, f.view('d2'), false), 'failed');
});

test('a device online past its timeout without reaching healthy fails; an offline one does not', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { deviceTimeout: '10s', maxFailures: '5' });
  f.offline('d2');
  advance(r, f.view, T0);
  advance(r, f.view, T0 + 11 * S);
  t.is(r.devices.d1!.state, 'failed');
  t.is(r.devices.d1!.error, 'not healthy within 10s');
  t.is(r.devices.d2!.state, 'moving', 'offline: pending, not failed');
});

test('an offline device holds its batch only for the offline wait, then converges later', (t) => {
  const f = fleet(ids(3));
  const r = rollout(ids(3), { strategy: 'batches', batchSize: '2', offlineWait: '30s' });
  f.offline('d2');
  advance(r, f.view, T0);
  f.healthy('d1');
  t.is(advance(r, f.view, T0 + 10 * S).assign.size, 0, 'waiting for d2');
  t.deepEqual([...advance(r, f.view, T0 + 30 * S).assign.keys()], ['d3']);
  f.healthy('d3');
  advance(r, f.view, T0 + 31 * S);
  t.is(r.phase, 'succeeded');
  f.healthy('d2');
  t.is(r.devices.d2!.state, 'moving', 'a finished rollout is not advanced; the device has its desired state anyway');
});

test('paused: devices already moving finish, no new device moves; max unavailable bounds a batch', (t) => {
  const f = fleet(ids(4));
  const r = rollout(ids(4), { strategy: 'all-at-once', maxUnavailable: '2' });
  t.deepEqual(moving((advance(r, f.view, T0), r)), ['d1', 'd2']);
  r.phase = 'paused';
  f.healthy('d1');
  f.healthy('d2');
  t.is(advance(r, f.view, T0 + S).assign.size, 0);
  t.is(r.devices.d1!.state, 'healthy', 'watched while paused');
  r.phase = 'running';
  t.deepEqual([...advance(r, f.view, T0 + 2 * S).assign.keys()], ['d3', 'd4']);
});

test('a rollback ignores the failure threshold and counts a device back when it serves its old revision', (t) => {
  const f = fleet(ids(2));
  const r = { ...rollout(ids(2), {}, 1, 2), kind: 'rollback' as const };
  f.healthy('d1', 2);
  f.failed('d2');
  advance(r, f.view, T0);
  t.is(r.phase, 'running');
  f.healthy('d1', 1);
  f.healthy('d2', 1);
  advance(r, f.view, T0 + S);
  t.is(r.phase, 'succeeded');
});

test('a rollback of a first deployment takes the service away; gone from the report is done', (t) => {
  const f = fleet(['d1']);
  const r = { ...rollout(['d1'], {}, 0, 1), kind: 'rollback' as const };
  r.devices.d1!.to = null;
  advance(r, f.view, T0);
  t.is(r.phase, 'running');
  const view = (): DeviceView => ({ online: true, service: null });
  advance(r, view, T0 + S);
  t.is(r.phase, 'succeeded');
});

test('right after a hub start an offline device holds its batch: it may only not have reconnected yet', (t) => {
  const f = fleet(ids(3));
  const r = rollout(ids(3), { strategy: 'batches', batchSize: '2' });
  advance(r, f.view, T0);
  f.healthy('d1');
  f.offline('d2');
  const trustedFrom = T0 + 30 * S;
  t.is(advance(r, f.view, T0 + 10 * S, [], trustedFrom).assign.size, 0, 'd2 is given time to come back');
  t.deepEqual([...advance(r, f.view, T0 + 30 * S, [], trustedFrom).assign.keys()], ['d3']);
});

test('defaults: all at once tolerates every failure (it has moved every device already); staged strategies none', (t) => {
  t.is(resolveOptions().options.maxFailures, '100%');
  t.is(resolveOptions({ strategy: 'batches' }).options.maxFailures, '0');
  t.is(resolveOptions({ strategy: 'canary' }).options.soak, '60s');
  const f = fleet(ids(2));
  const r = rollout(ids(2), {});
  advance(r, f.view, T0);
  f.failed('d1');
  f.healthy('d2');
  t.is(advance(r, f.view, T0 + 11 * 60 * S).abort, null);
  t.is(r.phase, 'completed-with-failures');
});

/** The figures the controller would store for the batch: each configured gate ok (or as given). */
function measured(r: RolloutRecord, at: number, ok: Record<string, boolean | null> = {}): void {
  const names = { errorRate: 'error-rate', p95: 'p95', p95Ratio: 'p95-ratio', metric: 'metric' } as const;
  r.gates = Object.entries(names)
    .filter(([field]) => r.options.gates?.[field as keyof typeof names] !== undefined)
    .map(([field, name]) => ({ name, threshold: String(r.options.gates![field as keyof typeof names]), value: name === 'p95' ? 400 : 0, baseline: null, ok: name in ok ? (ok[name] as boolean | null) : true, requests: 50, checkedAt: new Date(at).toISOString(), batch: r.batch }));
}

test('gates: after the soak the engine asks for figures, goes on only once they pass, and judges from the record alone', (t) => {
  const f = fleet(ids(3));
  const r = rollout(ids(3), { strategy: 'canary', canary: '1', batchSize: '2', soak: '10s', gates: { p95: '250ms', errorRate: '1%' } });
  t.deepEqual([...advance(r, f.view, T0).assign.keys()], ['d1']);
  f.healthy('d1');
  t.is(advance(r, f.view, T0 + S).measure, null, 'soaking: nothing to measure yet');
  t.is(advance(r, f.view, T0 + 11 * S).measure, 0, 'the soak is over: figures for batch 0 wanted');
  measured(r, T0 + 5 * S);
  const early = advance(r, f.view, T0 + 12 * S);
  t.is(early.measure, 0, 'figures from before the end of the soak do not count');
  t.is(early.assign.size, 0);
  measured(r, T0 + 12 * S);
  t.deepEqual([...advance(r, f.view, T0 + 12 * S).assign.keys()], ['d2', 'd3']);
  t.is(r.soakUntil, null);
});

test('gates: a breach in the stored figures aborts with the metric, threshold and value', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { strategy: 'canary', canary: '1', soak: '1s', gates: { p95: '250ms', errorRate: '1%' } });
  advance(r, f.view, T0);
  f.healthy('d1');
  advance(r, f.view, T0 + S);
  measured(r, T0 + 2 * S, { p95: false });
  r.gates!.find((g) => g.name === 'p95')!.baseline = 80;
  const out = advance(r, f.view, T0 + 2 * S);
  t.is(out.abort, 'gate p95 failed after batch 1: p95 400ms > 250ms (old revision 80ms)');
  t.is(out.assign.size, 0);
});

test('gates: too few requests wait, asking again now and then, and fail at the device timeout after the soak', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { strategy: 'batches', batchSize: '1', deviceTimeout: '60s', gates: { errorRate: '1%', minRequests: 100 } });
  advance(r, f.view, T0);
  f.healthy('d1');
  t.is(advance(r, f.view, T0 + S).measure, 0, 'no soak: judged once the batch is healthy');
  measured(r, T0 + S, { 'error-rate': null });
  t.is(advance(r, f.view, T0 + 2 * S).measure, null, 'measured a moment ago');
  t.is(advance(r, f.view, T0 + 5 * S).measure, 0);
  t.is(r.batch, 0);
  const timedOut = advance(r, f.view, T0 + 62 * S);
  t.is(timedOut.abort, null, 'figures from before the timeout do not decide it');
  t.is(timedOut.measure, 0, 'one more measurement does');
  measured(r, T0 + 62 * S, { 'error-rate': null });
  t.is(advance(r, f.view, T0 + 62 * S).abort, 'gate error-rate failed after batch 1: 50 requests within 60s after the soak, fewer than the 100 it needs');
});

test('gates: paused time does not count; figures from before the pause wait for fresh ones at resume', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { strategy: 'canary', canary: '1', soak: '10s', deviceTimeout: '60s', gates: { errorRate: '1%', minRequests: 100 } });
  advance(r, f.view, T0);
  f.healthy('d1');
  advance(r, f.view, T0 + S);
  t.is(r.soakUntil, new Date(T0 + 11 * S).toISOString());
  measured(r, T0 + 20 * S, { 'error-rate': null });
  // Paused at +30s (the pause sets updatedAt), resumed at +1000s: long after the device timeout.
  r.phase = 'paused';
  r.updatedAt = new Date(T0 + 30 * S).toISOString();
  advance(r, f.view, T0 + 500 * S);
  resume(r, T0 + 1000 * S);
  t.is(r.phase as string, 'running');
  t.is(r.soakUntil, new Date(T0 + 981 * S).toISOString(), 'the soak end moves by the paused time');
  const out = advance(r, f.view, T0 + 1000 * S);
  t.is(out.abort, null, 'the 19s waited before the pause count, the 970s paused do not');
  t.is(out.measure, 0);
  // Figures that passed before a pause do not let the batch go on at resume.
  measured(r, T0 + 990 * S);
  r.phase = 'paused';
  r.updatedAt = new Date(T0 + 1001 * S).toISOString();
  resume(r, T0 + 1002 * S);
  t.is(r.gates![0]!.ok, null);
  const again = advance(r, f.view, T0 + 1002 * S);
  t.is(again.measure, 0);
  t.is(r.batch, 0);
  measured(r, T0 + 1010 * S);
  t.deepEqual([...advance(r, f.view, T0 + 1010 * S).assign.keys()], ['d2']);
});

test('gates: resumed after a batch without a soak was done, the wait counts from the resume', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { strategy: 'batches', batchSize: '1', deviceTimeout: '60s', gates: { errorRate: '1%', minRequests: 100 } });
  advance(r, f.view, T0);
  r.phase = 'paused';
  r.updatedAt = new Date(T0 + S).toISOString();
  f.healthy('d1');
  advance(r, f.view, T0 + 2 * S);
  resume(r, T0 + 500 * S);
  t.is(r.soakUntil, new Date(T0 + 500 * S).toISOString());
  measured(r, T0 + 520 * S, { 'error-rate': null });
  t.is(advance(r, f.view, T0 + 520 * S).abort, null);
  measured(r, T0 + 560 * S, { 'error-rate': null });
  t.regex(advance(r, f.view, T0 + 560 * S).abort!, /fewer than the 100 it needs/);
});

test('gates: the last batch soaks and is gated too; without gates it is not', (t) => {
  const f = fleet(['d1']);
  const r = rollout(['d1'], { strategy: 'canary', soak: '5s', gates: { errorRate: '1%' } });
  advance(r, f.view, T0);
  f.healthy('d1');
  advance(r, f.view, T0 + S);
  t.is(r.soakUntil, new Date(T0 + 6 * S).toISOString());
  t.is(r.phase, 'running');
  t.is(advance(r, f.view, T0 + 6 * S).measure, 0);
  measured(r, T0 + 6 * S);
  advance(r, f.view, T0 + 6 * S);
  t.is(r.phase, 'succeeded');
  const plain = rollout(['d1'], { strategy: 'canary', soak: '5s' });
  advance(plain, f.view, T0);
  advance(plain, f.view, T0 + S);
  t.is(plain.phase, 'succeeded', 'a lone canary without gates has nothing to soak for');
});

test('gates: a rollback carrying gate options is never held by them', (t) => {
  const f = fleet(ids(1));
  const r = { ...rollout(ids(1), { gates: { errorRate: '1%' } }, 1, 2), kind: 'rollback' as const };
  advance(r, f.view, T0);
  f.healthy('d1', 1);
  const out = advance(r, f.view, T0 + S);
  t.is(out.measure, null);
  t.is(r.phase, 'succeeded');
});

test('gates: extra HealthGates plug in beside the recorded ones; one that waits holds the batch', (t) => {
  const f = fleet(ids(2));
  const r = rollout(ids(2), { strategy: 'batches', batchSize: '1' });
  advance(r, f.view, T0);
  f.healthy('d1');
  let verdict: ReturnType<HealthGate['check']> = { ok: null, measure: false };
  const seen: number[] = [];
  const gate: HealthGate = { name: 'custom', check: (_r, batch, _now, since) => (seen.push(batch, since), verdict) };
  t.is(advance(r, f.view, T0 + S, [gate]).assign.size, 0);
  t.deepEqual(seen, [0, Date.parse(r.devices.d1!.doneAt!)], 'since: when the batch was done (no soak)');
  verdict = { ok: true };
  t.deepEqual([...advance(r, f.view, T0 + 2 * S, [gate]).assign.keys()], ['d2']);
});
