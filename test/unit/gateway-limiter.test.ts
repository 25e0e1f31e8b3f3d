/** The gateway's per-service admission over replicas (agent/gateway/limiter.ts) with a manual clock. */
import test from 'ava';
import { ServiceLimiter, type Admission, type Limits, type Rotation } from '../../agent/gateway/limiter.js';
import type { Replica } from '../../agent/reconcile/routes.js';
import { ManualClock } from '../helpers/fake-clock.js';

const LIMITS = { maxConcurrent: 1, maxQueue: 2 };
const settled = async <T>(p: Promise<T>): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);
const replicas = (n: number): Replica[] => Array.from({ length: n }, (_, i) => ({ container: `c${i}`, port: 9000 + i }));
type Granted = Extract<Admission, { ok: true }>;
const granted = (a: Admission): Granted => {
  if (!a.ok) throw new Error(`refused: ${a.reason}`);
  return a;
};

/** A limiter over a rotation the test can change between calls. */
function limiterOver(limits: Limits, n = 1, clock = new ManualClock(0)): { limiter: ServiceLimiter; rotation: Rotation; clock: ManualClock } {
  const rotation: Rotation = { limits, replicas: replicas(n) };
  return { limiter: new ServiceLimiter(clock, () => rotation), rotation, clock };
}

test('one replica, maxConcurrent 1 and maxQueue 2: 10 at once give 1 admitted, 2 queued, 7 refused', async (t) => {
  const { limiter } = limiterOver(LIMITS);
  const all = Array.from({ length: 10 }, () => limiter.acquire(30_000));
  const first = granted(await all[0]!);
  const refused = await Promise.all(all.slice(3));
  t.true(refused.every((a) => !a.ok && a.reason === 'queue-full'));
  t.is(await settled(all[1]!), 'pending');
  t.is(limiter.queued, 2);
  first.release();
  const second = granted(await all[1]!);
  t.is(await settled(all[2]!), 'pending', 'FIFO: the first waiter went next');
  second.release();
  t.true((await all[2]!).ok);
  t.is(limiter.inFlight, 1);
});

test('3 replicas, maxConcurrent 1, maxQueue 10: 3 in flight, one on each, 30 waiting, the 34th refused', async (t) => {
  const { limiter } = limiterOver({ maxConcurrent: 1, maxQueue: 10 }, 3);
  const all = Array.from({ length: 34 }, () => limiter.acquire(30_000));
  const running = (await Promise.all(all.slice(0, 3))).map(granted);
  t.deepEqual(running.map((a) => a.replica.container).sort(), ['c0', 'c1', 'c2']);
  t.deepEqual(await all[33], { ok: false, reason: 'queue-full' });
  t.is(limiter.queued, 30);
  t.true(limiter.full());
  // Whichever replica frees its slot takes the head of the queue.
  running[1]!.release();
  const fourth = granted(await all[3]!);
  t.is(fourth.replica.container, running[1]!.replica.container);
  t.is(await settled(all[4]!), 'pending');
  t.deepEqual([limiter.inFlight, limiter.queued], [3, 29]);
});

test('the fewest in flight first; among equals, round robin', async (t) => {
  const { limiter } = limiterOver({ maxConcurrent: 4, maxQueue: 0 }, 3);
  const order = [];
  for (let i = 0; i < 6; i++) {
    const a = granted(await limiter.acquire(1000));
    order.push(a.replica.container);
    a.release();
  }
  t.deepEqual(order, ['c0', 'c1', 'c2', 'c0', 'c1', 'c2']);
  const held = granted(await limiter.acquire(1000));
  t.is(held.replica.container, 'c0');
  const next = [granted(await limiter.acquire(1000)), granted(await limiter.acquire(1000)), granted(await limiter.acquire(1000))];
  t.deepEqual(
    next.map((a) => a.replica.container),
    ['c1', 'c2', 'c0'],
    'c0 is busy: the others first, then all equal again',
  );
  t.deepEqual(['c0', 'c1', 'c2'].map((c) => limiter.inFlightOn(c)), [2, 1, 1]);
});

test('limits and replicas are read at each decision: a change applies to the next request and to those waiting', async (t) => {
  const { limiter, rotation } = limiterOver(LIMITS);
  granted(await limiter.acquire(1000));
  const waiting = [limiter.acquire(1000), limiter.acquire(1000)];
  t.deepEqual(await limiter.acquire(1000), { ok: false, reason: 'queue-full' });
  rotation.limits = { maxConcurrent: 1, maxQueue: 3 };
  const third = limiter.acquire(1000);
  t.is(await settled(third), 'pending', 'queued: the queue grew');
  rotation.replicas = replicas(3);
  // The next arrival lets the waiting go first to the new replicas.
  const fourth = limiter.acquire(1000);
  t.deepEqual((await Promise.all(waiting)).map((a) => granted(a).replica.container).sort(), ['c1', 'c2']);
  t.is(await settled(third), 'pending');
  t.is(await settled(fourth), 'pending');
  t.deepEqual([limiter.inFlight, limiter.queued], [3, 2]);
});

test('a retry goes to the head of the queue and is never refused for a full queue', async (t) => {
  const { limiter } = limiterOver({ maxConcurrent: 1, maxQueue: 1 }, 2);
  const a = granted(await limiter.acquire(1000));
  const b = granted(await limiter.acquire(1000));
  const queued = [limiter.acquire(1000), limiter.acquire(1000)];
  t.true(limiter.full(), '2 replicas × 1 waiting');
  const retried = limiter.acquire(1000, { retry: true });
  t.is(limiter.queued, 3);
  b.release();
  t.is(granted(await retried).replica.container, b.replica.container, 'the retry went first');
  t.is(await settled(queued[0]!), 'pending');
  a.release();
  t.true((await queued[0]!).ok);
});

test('a replica that left the rotation takes no more requests; its requests still count until they end', async (t) => {
  const { limiter, rotation } = limiterOver({ maxConcurrent: 1, maxQueue: 1 }, 2);
  const on0 = granted(await limiter.acquire(1000));
  t.is(on0.replica.container, 'c0');
  rotation.replicas = [rotation.replicas[1]!];
  const next = granted(await limiter.acquire(1000));
  t.is(next.replica.container, 'c1');
  t.is(limiter.inFlight, 2);
  const waiting = limiter.acquire(1000);
  on0.release();
  t.is(await settled(waiting), 'pending', 'a slot on a replica out of rotation is no slot');
  next.release();
  t.is(granted(await waiting).replica.container, 'c1');
});

test('a waiter that outlasts the queue timeout gives up; releasing twice frees one slot', async (t) => {
  const { limiter, clock } = limiterOver(LIMITS);
  const first = granted(await limiter.acquire(1000));
  const waiting = limiter.acquire(1000);
  clock.advance(1000);
  t.deepEqual(await waiting, { ok: false, reason: 'queue-timeout' });
  t.is(limiter.queued, 0);
  first.release();
  first.release();
  t.is(limiter.inFlight, 0);
});

test('a client that goes away leaves the queue', async (t) => {
  const { limiter } = limiterOver(LIMITS);
  await limiter.acquire(1000);
  const controller = new AbortController();
  const waiting = limiter.acquire(1000, { signal: controller.signal });
  controller.abort();
  t.deepEqual(await waiting, { ok: false, reason: 'aborted' });
  t.is(limiter.queued, 0);
});

test('maxQueue 0 refuses as soon as every slot is busy', async (t) => {
  const { limiter } = limiterOver({ maxConcurrent: 2, maxQueue: 0 });
  t.true((await limiter.acquire(1000)).ok);
  t.true((await limiter.acquire(1000)).ok);
  t.deepEqual(await limiter.acquire(1000), { ok: false, reason: 'queue-full' });
});

test('no replica in rotation: nothing is admitted and the queue holds none', async (t) => {
  const { limiter } = limiterOver(LIMITS, 0);
  t.true(limiter.full());
  t.deepEqual(await limiter.acquire(1000), { ok: false, reason: 'queue-full' });
});

test('full() says ahead of acquire whether it would refuse', async (t) => {
  const { limiter } = limiterOver(LIMITS);
  t.false(limiter.full(), 'a free slot');
  await limiter.acquire(1000);
  t.false(limiter.full(), 'room in the queue');
  void limiter.acquire(1000);
  void limiter.acquire(1000);
  t.true(limiter.full());
  t.deepEqual(await limiter.acquire(1000), { ok: false, reason: 'queue-full' });
});

test('a client gone before it asks does not take a place in the queue', async (t) => {
  const { limiter, clock } = limiterOver(LIMITS);
  await limiter.acquire(1000);
  t.deepEqual(await limiter.acquire(1000, { signal: AbortSignal.abort() }), { ok: false, reason: 'aborted' });
  t.is(limiter.queued, 0);
  t.is(clock.pending(), 0, 'and leaves no timer behind');
});
