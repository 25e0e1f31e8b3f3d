/**
 * How the outbox counts a batch the quota drops while its publish is under way (agent/telemetry/leases.ts):
 * once if that publish fails, never if it is acknowledged, and never twice.
 */
import test from 'ava';
import { Leases } from '../../agent/telemetry/leases.js';

test('a batch not out for delivery is counted when dropped; one out waits for its publish', (t) => {
  const leases = new Leases();
  t.false(leases.drop('waiting', 'metrics'), 'not out: the outbox counts it at once');
  leases.take('out');
  t.true(leases.isOut('out'));
  t.true(leases.drop('out', 'capture'), 'out: its count waits');
});

test('dropped while out, then acknowledged: delivered, never counted as dropped', (t) => {
  const leases = new Leases();
  leases.take('b');
  leases.drop('b', 'metrics');
  leases.delivered('b');
  t.false(leases.isOut('b'));
  t.is(leases.failed('b'), undefined, 'a late failure of a delivered batch counts nothing');
});

test('dropped while out, then failed: counted once, in its lane', (t) => {
  const leases = new Leases();
  leases.take('b');
  leases.drop('b', 'capture');
  t.is(leases.failed('b'), 'capture');
  t.is(leases.failed('b'), undefined, 'a second failure counts nothing');
  t.false(leases.isOut('b'));
});

test('failed without a drop: offered again, nothing counted; out again after a new take', (t) => {
  const leases = new Leases();
  leases.take('b');
  t.is(leases.failed('b'), undefined);
  t.false(leases.isOut('b'));
  leases.take('b');
  t.true(leases.isOut('b'));
  leases.delivered('b');
  t.false(leases.drop('b', 'metrics'), 'no longer out');
});
