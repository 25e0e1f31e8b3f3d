/**
 * The agent's autoscaler (agent/scale/) on a manual clock with a fake gateway load: up only after a
 * full scale-up window, straight to ceil(load / target) within min..max; down one replica at a time
 * after the scale-down window, to min; the resource guard holding at what fits, with its reason;
 * every decision logged once, kept as lastScale and counted.
 */
import test from 'ava';
import { pino } from 'pino';
import { Autoscaler, SAMPLE_MS, type ServiceLoad } from '../../agent/scale/autoscaler.js';
import { assumedMemory, hostMemory, MemoryGuard, type AvailableMemory } from '../../agent/scale/memory-guard.js';
import type { DesiredService, ServiceScale } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';

const T0 = Date.parse('2026-01-05T10:00:00.000Z');
const MIB = 1024 * 1024;
const UP_MS = 5000;
const DOWN_MS = 60_000;

function service(name: string, scale: Partial<ServiceScale>, memoryBytes: number | null = null): DesiredService {
  return {
    name,
    revision: 1,
    image: `reg.example/${name}@sha256:${'a'.repeat(64)}`,
    limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes, cpus: null },
    keyHash: 'b'.repeat(64),
    models: [],
    scale: { minReplicas: 1, maxReplicas: 3, targetUtilization: 0.7, scaleUpWindowMs: UP_MS, scaleDownWindowMs: DOWN_MS, ...scale },
  };
}

function setup(opts: { services: DesiredService[]; memory?: AvailableMemory; marginBytes?: number }) {
  const clock = new ManualClock(T0);
  let services = opts.services;
  const loads = new Map<string, ServiceLoad>();
  const asked: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  let changes = 0;
  const scaler = new Autoscaler({
    load: {
      load: (name) => {
        asked.push(name);
        return loads.get(name) ?? { inFlight: 0, queued: 0, ready: 1 };
      },
    },
    desired: () => services,
    guard: new MemoryGuard({ available: opts.memory ?? assumedMemory(64 * 1024 * MIB), marginBytes: opts.marginBytes ?? 128 * MIB }),
    onChange: () => void (changes += 1),
    clock,
    logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) }),
  });
  return {
    clock,
    scaler,
    logs,
    asked,
    changes: () => changes,
    setServices: (next: DesiredService[]) => void (services = next),
    /** The gateway's view of `name` from now on. */
    setLoad: (name: string, inFlight: number, queued: number, ready: number) => void loads.set(name, { inFlight, queued, ready }),
    /** Samples every SAMPLE_MS for `ms`, as the timer would. */
    run: async (ms: number) => {
      for (let elapsed = 0; elapsed < ms; elapsed += SAMPLE_MS) {
        clock.ms += SAMPLE_MS;
        await scaler.sample();
      }
    },
    decisions: (msg: string) => logs.filter((l) => l.msg === msg),
  };
}

test('scales up only once a full scale-up window asked for it, straight to ceil(load / target) clamped to max', async (t) => {
  const iris = service('iris', { maxReplicas: 3 });
  const s = setup({ services: [iris] });
  s.setLoad('iris', 1, 10, 1);
  await s.run(UP_MS - SAMPLE_MS);
  t.is(s.scaler.desired(iris, 1), 1, 'a window not yet full decides nothing');
  t.is(s.changes(), 0);
  await s.run(SAMPLE_MS);
  t.is(s.scaler.desired(iris, 1), 3, 'ceil(11 / 0.7) = 16, clamped to max 3, in one step');
  t.is(s.changes(), 1);
  const [up] = s.decisions('scaled up');
  t.like(up, { service: 'iris', from: 1, to: 3, wanted: 3, avgLoad: 11, avgTotal: 11, target: 0.7, window: '5s' });
  t.like(s.scaler.status('iris').lastScale, { at: new Date(s.clock.ms).toISOString(), from: 1, to: 3, reason: 'load 11 per replica > 0.7 × maxConcurrent 1 over 5s' });
  t.deepEqual(s.scaler.takeInterval(), { iris: { up: 2, down: 0, held: 0 } });
  t.deepEqual(s.scaler.takeInterval(), {}, 'counts start again');
  await s.run(UP_MS * 2);
  t.is(s.changes(), 1, 'the same load asks for nothing more');
  t.is(s.decisions('scaled up').length, 1, 'each decision is logged once');
});

test('the count the average total load asks for, within the range', async (t) => {
  const iris = service('iris', { maxReplicas: 5 });
  const s = setup({ services: [iris] });
  s.setLoad('iris', 1, 1, 1);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 3, 'ceil(2 / 0.7)');
  s.setLoad('iris', 3, 2, 3);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 5, 'ceil(5 / 0.7) = 8, clamped to 5');
});

test('a restarted agent carries on with the replicas it runs: no step down before a scale-down window without need', async (t) => {
  const iris = service('iris', { maxReplicas: 3 });
  const s = setup({ services: [iris] });
  // The agent's first pass is slow: samples come before the reconciler says what runs.
  s.setLoad('iris', 0, 0, 0);
  await s.run(1000);
  t.is(s.scaler.desired(iris, 3), 3, 'before the reconciler asked: what runs');
  s.setLoad('iris', 0, 0, 3);
  await s.run(DOWN_MS - SAMPLE_MS);
  t.is(s.scaler.desired(iris, 3), 3, 'idle, but not yet for a whole scale-down window');
  t.is(s.changes(), 0);
  t.is(s.decisions('scaled down').length, 0);
  t.is(s.scaler.desired(service('fresh', {}), 0), 1, 'a new service starts at min');
});

test('a short burst whose window average stays under the target does not scale', async (t) => {
  const iris = service('iris', {});
  const s = setup({ services: [iris] });
  await s.run(UP_MS);
  s.setLoad('iris', 1, 1, 1);
  await s.run(SAMPLE_MS * 2);
  s.setLoad('iris', 0, 0, 1);
  await s.run(UP_MS * 3);
  t.is(s.scaler.desired(iris, 1), 1, 'the average over 5s stayed at most 0.4 per replica');
  t.is(s.changes(), 0);
});

test('down one replica at a time once the scale-down window no longer needed the count, then a step every 2s to min', async (t) => {
  const iris = service('iris', { maxReplicas: 3 });
  const s = setup({ services: [iris] });
  s.setLoad('iris', 3, 9, 3);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 3);
  const lastBusy = s.clock.ms;
  s.setLoad('iris', 0, 0, 3);
  await s.run(DOWN_MS - SAMPLE_MS);
  t.is(s.scaler.desired(iris, 1), 3, 'the busy sample is still inside the window');
  await s.run(SAMPLE_MS);
  t.is(s.clock.ms, lastBusy + DOWN_MS);
  t.is(s.scaler.desired(iris, 1), 2, 'one replica, not straight to min');
  t.like(s.scaler.status('iris').lastScale, { from: 3, to: 2, reason: 'load needed at most 1 replica(s) over 60s, below 3' });
  await s.run(1500);
  t.is(s.scaler.desired(iris, 1), 2);
  await s.run(SAMPLE_MS);
  t.is(s.scaler.desired(iris, 1), 1, 'the next step 2s later');
  await s.run(DOWN_MS * 2);
  t.is(s.scaler.desired(iris, 1), 1, 'never below min');
  t.deepEqual(
    s.decisions('scaled down').map((d) => [d.from, d.to, d.need, d.window]),
    [
      [3, 2, 1, '60s'],
      [2, 1, 1, '60s'],
    ],
  );
  t.deepEqual(s.scaler.takeInterval(), { iris: { up: 2, down: 2, held: 0 } });
  t.is(s.changes(), 3);
});

test('a load that still needs some replicas stops the steps down there', async (t) => {
  const iris = service('iris', { maxReplicas: 4 });
  const s = setup({ services: [iris] });
  s.setLoad('iris', 4, 6, 4);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 4);
  s.setLoad('iris', 1, 0, 4);
  await s.run(DOWN_MS + 10_000);
  t.is(s.scaler.desired(iris, 1), 2, 'one request at a time asks ceil(1 / 0.7) = 2 replicas');
});

test('the guard holds the count where no replica fits, says why with the numbers, and logs and counts it once', async (t) => {
  const iris = service('iris', {}, 256 * MIB);
  // 500 MiB assumed, 256 MiB taken by the running replica: 244 MiB, less the 128 MiB margin.
  const s = setup({ services: [iris], memory: assumedMemory(500 * MIB) });
  s.setLoad('iris', 1, 10, 1);
  await s.run(UP_MS * 4);
  t.is(s.scaler.desired(iris, 1), 1);
  t.is(s.changes(), 0);
  const capacity = 'capacity: a replica of iris needs 256 MiB; 244 MiB available, 128 MiB kept free: 1 of the 3 replicas the load asks for fit';
  t.is(s.scaler.status('iris').capacity, capacity);
  t.like(s.scaler.status('iris').lastScale, { from: 1, to: 1, reason: `load 11 per replica > 0.7 × maxConcurrent 1 over 5s; ${capacity}` });
  const held = s.decisions('scale-up held by capacity');
  t.is(held.length, 1, 'a refusal that persists is one decision');
  t.like(held[0], { service: 'iris', from: 1, wanted: 3, to: 1, available: 244 * MIB, margin: 128 * MIB, memoryBytes: 256 * MIB });
  t.deepEqual(s.scaler.takeInterval(), { iris: { up: 0, down: 0, held: 2 } });

  s.setLoad('iris', 0, 0, 1);
  await s.run(UP_MS);
  t.is(s.scaler.status('iris').capacity, undefined, 'no capacity reason once the load no longer asks for more');
});

test('the guard lets the count go as far as fits, counting the refused rest', async (t) => {
  const iris = service('iris', {}, 256 * MIB);
  // 640 - 256 = 384 MiB available, 256 MiB above the margin: one more replica.
  const s = setup({ services: [iris], memory: assumedMemory(640 * MIB) });
  s.setLoad('iris', 1, 10, 1);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 2);
  t.regex(s.scaler.status('iris').capacity ?? '', /^capacity: a replica of iris needs 256 MiB; 384 MiB available, 128 MiB kept free: 2 of the 3/);
  t.like(s.decisions('scaled up')[0], { from: 1, to: 2, wanted: 3, available: 384 * MIB });
  await s.run(UP_MS * 2);
  t.is(s.scaler.desired(iris, 1), 2, 'the second replica is committed now: nothing more fits');
  t.deepEqual(s.scaler.takeInterval(), { iris: { up: 1, down: 0, held: 1 } });
  t.is(s.decisions('scale-up held by capacity').length, 0, 'the partial step already said why');
});

test('assumed memory is what remains after the limits of the replicas of every service the agent runs', async (t) => {
  const iris = service('iris', {}, 256 * MIB);
  const fixed = service('fixed', { minReplicas: 2, maxReplicas: 2 }, 128 * MIB);
  const unguarded = service('plain', { minReplicas: 3, maxReplicas: 3 }, null);
  // 1024 - 256 (iris) - 2 × 128 (fixed) = 512 MiB; 384 above the margin: one replica of 256 MiB.
  const s = setup({ services: [iris, fixed, unguarded], memory: assumedMemory(1024 * MIB) });
  s.setLoad('iris', 1, 10, 1);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 2);
  t.regex(s.scaler.status('iris').capacity ?? '', /512 MiB available/);
  t.is(s.scaler.desired(fixed, 1), 2, 'a fixed count is simply that count');
  t.false(s.asked.includes('fixed'), 'and is never sampled');
});

test("host memory is the device's own figure; one it cannot read holds the count with the reason", async (t) => {
  const iris = service('iris', {}, 256 * MIB);
  let available: number | Error = 0;
  const s = setup({
    services: [iris],
    memory: hostMemory(async () => {
      if (available instanceof Error) throw available;
      return available;
    }),
  });
  s.setLoad('iris', 1, 1, 1);
  available = new Error('ENOENT /proc/meminfo');
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 1);
  t.is(s.scaler.status('iris').capacity, "capacity: the device's available memory could not be read (ENOENT /proc/meminfo)");
  // (640 - 128) / 256: two more fit; with the running replica subtracted again only one would.
  available = 640 * MIB;
  await s.run(SAMPLE_MS);
  t.is(s.scaler.desired(iris, 1), 3, 'the running replica is not subtracted: the host counts it already');
  t.is(s.scaler.status('iris').capacity, undefined);
});

test('host memory: replicas asked for but not ready yet count as taken, so the next decision does not add them twice', async (t) => {
  const iris = service('iris', { maxReplicas: 5 }, 512 * MIB);
  const s = setup({ services: [iris], memory: hostMemory(async () => 1228 * MIB) });
  // 1 ready replica, and a load that asks for 5.
  s.setLoad('iris', 1, 10, 1);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 3, '(1228 − 128) / 512: two more fit');
  // The two new ones are still starting: MemAvailable has not gone down yet.
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 3, 'no more: the starting ones will take that memory');
  t.regex(s.scaler.status('iris').capacity ?? '', /^capacity: /);
});

test('a replica without a memory limit is not guarded', async (t) => {
  const iris = service('iris', {}, null);
  const s = setup({ services: [iris], memory: assumedMemory(0) });
  s.setLoad('iris', 1, 10, 1);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 3);
});

test('a new range moves the count into it at once; a service no longer desired is forgotten', async (t) => {
  const iris = service('iris', { maxReplicas: 3 });
  const s = setup({ services: [iris] });
  await s.run(SAMPLE_MS);
  const narrowed = service('iris', { minReplicas: 2, maxReplicas: 4 });
  s.setServices([narrowed]);
  await s.run(SAMPLE_MS);
  t.is(s.scaler.desired(narrowed, 1), 2);
  t.is(s.changes(), 1);
  s.setServices([]);
  await s.run(SAMPLE_MS);
  t.deepEqual(s.scaler.status('iris'), {});
  t.is(s.scaler.desired(iris, 1), 1, 'back to its minimum, as for a service never seen');
});

test('samples on its timer every 500 ms until closed, and leaves no timer', async (t) => {
  const iris = service('iris', {});
  const s = setup({ services: [iris] });
  s.scaler.start();
  for (let i = 0; i < 3; i++) {
    s.clock.advance(SAMPLE_MS);
    await new Promise((r) => setImmediate(r));
  }
  t.is(s.asked.length, 3);
  await s.scaler.close();
  t.is(s.clock.pending(), 0);
  s.clock.advance(SAMPLE_MS * 4);
  t.is(s.asked.length, 3);
});

test('an exact multiple of the target asks for that many replicas, not one more (0.7 × 3 is 2.0999… in floating point)', async (t) => {
  const iris: DesiredService = { ...service('iris', { maxReplicas: 12 }), limits: { maxConcurrent: 3, maxQueue: 10, memoryBytes: null, cpus: null } };
  const s = setup({ services: [iris] });
  s.setLoad('iris', 12, 28, 4);
  await s.run(UP_MS);
  t.is(s.scaler.desired(iris, 1), 12);
  s.setLoad('iris', 12, 9, 12);
  await s.run(DOWN_MS + 10_000);
  t.is(s.scaler.desired(iris, 1), 10, '21 requests at 2.1 per replica');
});
