/** The gateway's per-service admission (agent/gateway/limiter.ts) with a manual clock. */
import test from 'ava';
import { ServiceLimiter, type Admission } from '../../agent/gateway/limiter.js';
import { ManualClock } from '../helpers/fake-clock.js';

const LIMITS = { maxConcurrent: 1, maxQueue: 2 };
const settled = async <T>(p: Promise<T>): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);

test('maxConcurrent 1 and maxQueue 2: 10 at once give 1 admitted, 2 queued, 7 refused', async (t) => {
  const limiter = new ServiceLimiter(new ManualClock(0));
  const all = Array.from({ length: 10 }, () => limiter.acquire(LIMITS, 30_000));
  const first = await all[0]!;
  t.true(first.ok);
  const refused = (await Promise.all(all.slice(3))) as Admission[];
  t.true(refused.every((a) => !a.ok && a.reason === 'queue-full'));
  t.is(await settled(all[1]!), 'pending');
  t.is(limiter.queued, 2);
  (first as { release: () => void }).release();
  const second = await all[1]!;
  t.true(second.ok, 'FIFO: the first waiter goes next');
  t.is(await settled(all[2]!), 'pending');
  (second as { release: () => void }).release();
  t.true((await all[2]!).ok);
  t.is(limiter.inFlight, 1);
});

test('a waiter that outlasts the queue timeout gives up; releasing twice frees one slot', async (t) => {
  const clock = new ManualClock(0);
  const limiter = new ServiceLimiter(clock);
  const first = (await limiter.acquire(LIMITS, 1000)) as { ok: true; release: () => void };
  const waiting = limiter.acquire(LIMITS, 1000);
  clock.advance(1000);
  t.deepEqual(await waiting, { ok: false, reason: 'queue-timeout' });
  t.is(limiter.queued, 0);
  first.release();
  first.release();
  t.is(limiter.inFlight, 0);
});

test('a client that goes away leaves the queue', async (t) => {
  const limiter = new ServiceLimiter(new ManualClock(0));
  await limiter.acquire(LIMITS, 1000);
  const controller = new AbortController();
  const waiting = limiter.acquire(LIMITS, 1000, controller.signal);
  controller.abort();
  t.deepEqual(await waiting, { ok: false, reason: 'aborted' });
  t.is(limiter.queued, 0);
});

test('maxQueue 0 refuses as soon as every slot is busy', async (t) => {
  const limiter = new ServiceLimiter(new ManualClock(0));
  t.true((await limiter.acquire({ maxConcurrent: 2, maxQueue: 0 }, 1000)).ok);
  t.true((await limiter.acquire({ maxConcurrent: 2, maxQueue: 0 }, 1000)).ok);
  t.deepEqual(await limiter.acquire({ maxConcurrent: 2, maxQueue: 0 }, 1000), { ok: false, reason: 'queue-full' });
});

test('full() says ahead of acquire whether it would refuse', async (t) => {
  const limiter = new ServiceLimiter(new ManualClock(0));
  t.false(limiter.full(LIMITS), 'a free slot');
  await limiter.acquire(LIMITS, 1000);
  t.false(limiter.full(LIMITS), 'room in the queue');
  void limiter.acquire(LIMITS, 1000);
  void limiter.acquire(LIMITS, 1000);
  t.true(limiter.full(LIMITS));
  t.deepEqual(await limiter.acquire(LIMITS, 1000), { ok: false, reason: 'queue-full' });
});

test('a client gone before it asks does not take a place in the queue', async (t) => {
  const clock = new ManualClock(0);
  const limiter = new ServiceLimiter(clock);
  await limiter.acquire(LIMITS, 1000);
  t.deepEqual(await limiter.acquire(LIMITS, 1000, AbortSignal.abort()), { ok: false, reason: 'aborted' });
  t.is(limiter.queued, 0);
  t.is(clock.pending(), 0, 'and leaves no timer behind');
});
