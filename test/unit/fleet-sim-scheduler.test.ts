import test from 'ava';
import { ManualClock } from '../helpers/fake-clock.js';
import { Scheduler } from '../../bench/simulator/scheduler.js';

test('entries run in time order (ties in scheduling order) on one clock timer; cancelled ones never run', (t) => {
  const clock = new ManualClock(0);
  const scheduler = new Scheduler(clock);
  const ran: string[] = [];
  scheduler.after(30, () => ran.push('c'));
  scheduler.after(10, () => ran.push('a1'));
  scheduler.after(10, () => ran.push('a2'));
  scheduler.after(20, () => ran.push('b')).cancel();
  t.is(clock.pending(), 1, 'one timer, armed for the earliest');
  clock.advance(10);
  t.deepEqual(ran, ['a1', 'a2']);
  clock.advance(100);
  t.deepEqual(ran, ['a1', 'a2', 'c']);
  t.is(scheduler.pending(), 0);
});

test('a sleep resolves on time, rejects when its signal aborts, and stop() drops everything', async (t) => {
  const clock = new ManualClock(0);
  const scheduler = new Scheduler(clock);
  const done = scheduler.sleep(50);
  clock.advance(50);
  await done;
  const abort = new AbortController();
  const aborted = scheduler.sleep(1000, abort.signal);
  abort.abort(new Error('no longer wanted'));
  await t.throwsAsync(aborted, { message: 'no longer wanted' });
  let ran = false;
  scheduler.after(10, () => (ran = true));
  scheduler.stop();
  t.is(clock.pending(), 0);
  scheduler.after(1, () => (ran = true));
  clock.advance(100);
  t.false(ran);
});
