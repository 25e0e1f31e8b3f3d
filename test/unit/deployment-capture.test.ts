/**
 * A deployment's capture settings on the hub (hub/fleet): a record stored before capture existed
 * reads as off, and a device's desired service carries capture only while it is on, so devices
 * with capture off get exactly the state they got before.
 */
import test from 'ava';
import { publicDeployment } from '../../hub/fleet/deployments.js';
import { desiredService } from '../../hub/fleet/desired-states.js';
import { NOW, storedDeployment } from '../helpers/stored-deployment.js';

/** As stored before capture existed: no `capture` field. */
const stored = storedDeployment;

test('a deployment stored without capture settings reads as capture off', (t) => {
  t.deepEqual(publicDeployment(stored).capture, { rate: 0, maxBodyBytes: 16 * 1024, redact: [] });
  t.false('capture' in desiredService(stored, 'gw-1', NOW)!);
});

test('the desired service carries capture only while its rate is above 0, on every revision', (t) => {
  const on = { rate: 0.1, maxBodyBytes: 1024, redact: ['ssn'] };
  t.false('capture' in desiredService({ ...stored, capture: { ...on, rate: 0 } }, 'gw-1', NOW)!);
  t.deepEqual(desiredService({ ...stored, capture: on }, 'gw-1', NOW), { ...desiredService(stored, 'gw-1', NOW)!, capture: on });
  const moved = { ...stored, capture: on, revision: 2, revisions: [...stored.revisions, { ...stored.revisions[0]!, revision: 2 }], assignments: { 'gw-2': 2 } };
  t.like(desiredService(moved, 'gw-2', NOW), { revision: 2, capture: on });
});
