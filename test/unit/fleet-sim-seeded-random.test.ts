import test from 'ava';
import { failureDrawn } from '../../bench/simulator/sim-runtime.js';
import { drawKey, uniform } from '../../bench/simulator/seeded-random.js';

test('draws depend on the seed and the key only, and spread evenly', (t) => {
  t.is(uniform(7, drawKey('a', 1)), uniform(7, drawKey('a', 1)));
  t.not(uniform(7, drawKey('a', 1)), uniform(8, drawKey('a', 1)));
  const draws = Array.from({ length: 10_000 }, (_, i) => uniform(1, drawKey('d', i)));
  t.true(draws.every((u) => u >= 0 && u < 1));
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
  t.true(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
});

test('a failure rate picks about that share of devices, the same ones for the same seed and revision', (t) => {
  const ids = Array.from({ length: 1000 }, (_, i) => `sim-${i}`);
  const failing = (seed: number, revision: number) => ids.filter((id) => failureDrawn(seed, 'health', 0.2, id, 'x', revision));
  t.deepEqual(failing(3, 2), failing(3, 2));
  t.notDeepEqual(failing(3, 2), failing(3, 3), 'another revision, other devices');
  t.true(Math.abs(failing(3, 2).length - 200) < 40, `${failing(3, 2).length} of 1000`);
  t.is(ids.filter((id) => failureDrawn(3, 'pull', 1, id, 'x', 2)).length, 1000);
  t.is(ids.filter((id) => failureDrawn(3, 'pull', 0, id, 'x', 2)).length, 0);
  t.throws(() => failureDrawn(3, 'pull', 1.5, 'sim-0', 'x', 2), { message: /failure rate must be in \[0, 1\]/ });
});
