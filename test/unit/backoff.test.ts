/**
 * Capped exponential backoff with full jitter (shared/backoff.ts), with `random` injected.
 */
import test from 'ava';
import { backoffDelay, defaultBackoff, type BackoffPolicy } from '../../shared/backoff.js';

const policy: BackoffPolicy = { initialMs: 1000, maxMs: 60_000, factor: 2 };
const always = (value: number) => () => value;
const RANDOMS = [0, 0.001, 0.25, 0.5, 0.75, 0.999, 1];

test('the default policy starts at 1s, doubles and caps at 60s', (t) => {
  t.deepEqual(defaultBackoff, { initialMs: 1000, maxMs: 60_000, factor: 2 });
});

test('random = 1 gives the ceiling: initialMs × factor^attempt, capped at maxMs', (t) => {
  const delays = Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, policy, always(1)));
  t.deepEqual(delays, [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
});

test('random = 0 gives the floor: half of initialMs, whatever the attempt', (t) => {
  for (let attempt = 0; attempt < 50; attempt++) t.is(backoffDelay(attempt, policy, always(0)), 500, `attempt ${attempt}`);
});

test('random = 0.5 lands halfway between floor and ceiling', (t) => {
  t.is(backoffDelay(0, policy, always(0.5)), 750); // 500 + 0.5 × (1000 - 500)
  t.is(backoffDelay(2, policy, always(0.5)), 2250); // 500 + 0.5 × (4000 - 500)
  t.is(backoffDelay(20, policy, always(0.5)), 30_250); // 500 + 0.5 × (60000 - 500)
});

test('with the same random draw the delay never shrinks as the attempt grows, and grows until the cap', (t) => {
  for (const r of RANDOMS.filter((r) => r > 0)) {
    let previous = -1;
    for (let attempt = 0; attempt < 40; attempt++) {
      const delay = backoffDelay(attempt, policy, always(r));
      t.true(delay >= previous, `r=${r} attempt ${attempt}: ${delay} < ${previous}`);
      if (attempt > 0 && attempt <= 5) t.true(delay > previous, `r=${r} attempt ${attempt} should grow`);
      previous = delay;
    }
  }
});

test('every delay lies within [initialMs / 2, maxMs] and is an integer', (t) => {
  const policies: BackoffPolicy[] = [policy, { initialMs: 250, maxMs: 5000, factor: 1.5 }, { initialMs: 100, maxMs: 100, factor: 3 }, { initialMs: 7, maxMs: 1_000_000, factor: 10 }];
  for (const p of policies) {
    for (let attempt = 0; attempt < 100; attempt++) {
      for (const r of RANDOMS) {
        const delay = backoffDelay(attempt, p, always(r));
        const label = `${JSON.stringify(p)} attempt ${attempt} r=${r}: ${delay}`;
        t.true(Number.isInteger(delay), label);
        t.true(delay <= p.maxMs, label);
        t.true(delay >= p.initialMs / 2, label);
      }
    }
  }
});

test('the random draw is used once per call and spreads delays across the window', (t) => {
  let calls = 0;
  const delay = backoffDelay(3, policy, () => {
    calls++;
    return 0.1;
  });
  t.is(calls, 1);
  t.is(delay, Math.round(500 + 0.1 * (8000 - 500)));
  t.not(backoffDelay(3, policy, always(0.2)), backoffDelay(3, policy, always(0.8)));
});

test('huge attempt numbers stay finite and equal to the capped values', (t) => {
  for (const attempt of [1024, 1075, 10_000, 2 ** 31, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE]) {
    for (const r of [0, 0.5, 1]) {
      const delay = backoffDelay(attempt, policy, always(r));
      t.true(Number.isFinite(delay), `attempt ${attempt}: ${delay}`);
      t.is(delay, Math.round(500 + r * (60_000 - 500)), `attempt ${attempt} r=${r}`);
    }
  }
});

test('negative attempts are treated as attempt 0', (t) => {
  for (const r of [0, 0.5, 1]) t.is(backoffDelay(-5, policy, always(r)), backoffDelay(0, policy, always(r)));
});

test('the default random source keeps delays inside the window', (t) => {
  for (let i = 0; i < 200; i++) {
    const delay = backoffDelay(4, policy);
    t.true(delay >= 500 && delay <= 16_000, String(delay));
  }
});
