/**
 * A deployment's capture settings on the hub (hub/fleet): a record stored before capture existed
 * reads as off, and a device's desired service carries capture only while it is on, so devices
 * with capture off get exactly the state they got before.
 */
import test from 'ava';
import { publicDeployment } from '../../hub/fleet/deployments.js';
import { desiredService } from '../../hub/fleet/desired-states.js';
import type { DeploymentRecord } from '../../hub/store/store.js';

const AT = '2026-11-01T00:00:00.000Z';
const NOW = Date.parse(AT);
const IMAGE = `reg/iris@sha256:${'1'.repeat(64)}`;
const LIMITS = { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null };

/** As stored before capture existed: no `capture` field. */
const stored: DeploymentRecord = {
  service: 'iris',
  revision: 1,
  image: IMAGE,
  digest: `sha256:${'1'.repeat(64)}`,
  build: null,
  models: [],
  target: { site: 'lab' },
  limits: LIMITS,
  keyId: 'abcdefgh',
  keyHash: 'f'.repeat(64),
  stableRevision: 1,
  revisions: [{ revision: 1, image: IMAGE, digest: `sha256:${'1'.repeat(64)}`, build: null, models: [], limits: LIMITS, createdAt: AT }],
  assignments: {},
  rollout: { id: 1, kind: 'create', revision: 1, strategy: 'all-at-once', phase: 'succeeded', devices: ['gw-1'] },
  createdAt: AT,
  createdBy: { keyId: 'k', keyName: 'admin' },
  updatedAt: AT,
};

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
