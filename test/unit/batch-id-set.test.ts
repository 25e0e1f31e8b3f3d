/** The archive's memory of stored batch ids (hub/telemetry/id-set.ts). */
import test from 'ava';
import { BatchIdSet } from '../../hub/telemetry/id-set.js';

test('numbered ids in any order are remembered exactly, as few runs', (t) => {
  const ids = new BatchIdSet();
  const order = [1, 2, 3, 7, 5, 6, 4, 10, 9, 12];
  for (const n of order) ids.add(`dev-1/m.ab12.${n}`);
  for (let n = 0; n <= 13; n++) t.is(ids.has(`dev-1/m.ab12.${n}`), order.includes(n), `id ${n}`);
  t.is(ids.entries(), 3, 'runs 1-7, 9-10 and 12');
});

test('prefixes are kept apart, and ids of other shapes are kept whole', (t) => {
  const ids = new BatchIdSet();
  ids.add('dev-1/m.ab12.5');
  ids.add('dev-2/m.ab12.6');
  ids.add('weird-id');
  ids.add('dev-1/m.ab12.007');
  t.true(ids.has('dev-1/m.ab12.5'));
  t.false(ids.has('dev-2/m.ab12.5'));
  t.false(ids.has('dev-1/m.ab12.6'));
  t.true(ids.has('weird-id'));
  t.true(ids.has('dev-1/m.ab12.007'), 'a leading zero is not a number here: the id is kept whole');
  t.false(ids.has('dev-1/m.ab12.7'));
});

test('a week of one device at 10 s intervals is one run', (t) => {
  const ids = new BatchIdSet();
  for (let n = 1; n <= 60_480; n++) ids.add(`dev-1/m.ab12.${n}`);
  t.is(ids.entries(), 1);
  t.true(ids.has('dev-1/m.ab12.30000'));
  t.false(ids.has('dev-1/m.ab12.60481'));
});
