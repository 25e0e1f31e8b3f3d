/**
 * `shipLogs` on the hub and in the CLI: a deployment stored before it existed reads as off, the
 * desired service carries it only when on (older agents refuse a field they do not know), and
 * `--ship-logs` goes into deploy and service update requests alone or with other changes.
 */
import test from 'ava';
import { deployRequest, updateRequest, modelUpdateRequest } from '../../cli/commands/deployments.js';
import { publicDeployment } from '../../hub/fleet/deployments.js';
import { desiredService } from '../../hub/fleet/desired-states.js';
import type { DeploymentRecord } from '../../hub/store/store.js';
import { ServiceUpdate } from '../../shared/api/deployments.js';
import { compileChecker } from '../../shared/schema.js';

const AT = '2026-11-01T00:00:00.000Z';
const NOW = Date.parse(AT);
const IMAGE = `reg/iris@sha256:${'1'.repeat(64)}`;
const LIMITS = { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null };

/** As stored before log shipping existed: no `shipLogs` field. */
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

test('a deployment stored without shipLogs reads as off, and its devices get no shipLogs field', (t) => {
  t.is(publicDeployment(stored).shipLogs, 'off');
  t.false('shipLogs' in desiredService(stored, 'gw-1', NOW)!);
  t.false('shipLogs' in desiredService({ ...stored, shipLogs: 'off' }, 'gw-1', NOW)!);
});

test('shipLogs error rides along on every revision, without a new one', (t) => {
  const on: DeploymentRecord = { ...stored, shipLogs: 'error' };
  t.deepEqual(desiredService(on, 'gw-1', NOW), { ...desiredService(stored, 'gw-1', NOW)!, shipLogs: 'error' });
  t.is(publicDeployment(on).shipLogs, 'error');
  t.is(publicDeployment(on).revision, 1);
});

test('the API takes shipLogs error or off on an update, nothing else', (t) => {
  const check = compileChecker(ServiceUpdate);
  t.true(check({ shipLogs: 'error' }).ok);
  t.true(check({ shipLogs: 'off' }).ok);
  t.false(check({ shipLogs: 'warn' }).ok);
});

test('--ship-logs goes into deploy and service update requests; alone it is a change; not with --model', (t) => {
  const image = IMAGE;
  t.is(deployRequest('iris', { image, target: [], shipLogs: 'error' } as Parameters<typeof deployRequest>[1]).shipLogs, 'error');
  t.false('shipLogs' in deployRequest('iris', { image, target: [] } as Parameters<typeof deployRequest>[1]));
  t.deepEqual(updateRequest({ shipLogs: 'off' }), { shipLogs: 'off' });
  t.deepEqual(updateRequest({ shipLogs: 'error', replicas: 2 }), { replicas: 2, shipLogs: 'error' });
  t.throws(() => modelUpdateRequest({ model: { name: 'iris', ref: '2' }, shipLogs: 'error' }), { message: /--ship-logs/ });
});
