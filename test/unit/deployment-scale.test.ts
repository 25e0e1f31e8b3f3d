/**
 * Replicas and limits of a deployment on the hub: the scale a request asks for (fields left out kept,
 * bad combinations refused naming the field), and what devices get: the deployment's current limits
 * whatever their revision, and `scale` only when it is not one replica, so a 1..1 deployment's
 * desired state is exactly what agents before replicas got.
 */
import test from 'ava';
import { formatWindow, resolveScale } from '../../shared/api/deployments.js';
import { DEFAULT_SCALE } from '../../shared/protocol.js';
import { deployRequest, updateRequest } from '../../cli/commands/deployments.js';
import { publicDeployment } from '../../hub/fleet/deployments.js';
import { desiredService } from '../../hub/fleet/desired-states.js';
import type { DeploymentRecord } from '../../hub/store/store.js';

const AT = '2026-12-01T00:00:00.000Z';
const NOW = Date.parse(AT);
const image = (n: number) => `reg/iris@sha256:${String(n).repeat(64)}`;
const LIMITS = { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null };

/** Two revisions, as stored before replicas existed: no `scale`. */
const stored: DeploymentRecord = {
  service: 'iris',
  revision: 2,
  image: image(2),
  digest: `sha256:${'2'.repeat(64)}`,
  build: null,
  models: [],
  target: { site: 'lab' },
  limits: LIMITS,
  keyId: 'abcdefgh',
  keyHash: 'f'.repeat(64),
  stableRevision: 2,
  revisions: [1, 2].map((revision) => ({ revision, image: image(revision), digest: `sha256:${String(revision).repeat(64)}`, build: null, models: [], limits: LIMITS, createdAt: AT })),
  assignments: { 'gw-old': 1 },
  rollout: { id: 2, kind: 'update', revision: 2, strategy: 'all-at-once', phase: 'completed-with-failures', devices: ['gw-1', 'gw-old'] },
  createdAt: AT,
  createdBy: { keyId: 'k', keyName: 'admin' },
  updatedAt: AT,
};

test('a request asking nothing keeps the current scale; replicas fixes min and max; min and max move one end each', (t) => {
  t.deepEqual(resolveScale({}, DEFAULT_SCALE), { ok: true, value: DEFAULT_SCALE });
  t.deepEqual(resolveScale({ replicas: 3 }, DEFAULT_SCALE), { ok: true, value: { ...DEFAULT_SCALE, minReplicas: 3, maxReplicas: 3 } });
  t.deepEqual(resolveScale({ maxReplicas: 4 }, DEFAULT_SCALE), { ok: true, value: { ...DEFAULT_SCALE, maxReplicas: 4 } });
  const current = { ...DEFAULT_SCALE, minReplicas: 1, maxReplicas: 4 };
  t.deepEqual(resolveScale({ minReplicas: 2, targetUtilization: 0.5, scaleUpWindow: '10s', scaleDownWindow: '2m' }, current), {
    ok: true,
    value: { minReplicas: 2, maxReplicas: 4, targetUtilization: 0.5, scaleUpWindowMs: 10_000, scaleDownWindowMs: 120_000 },
  });
});

test('bad combinations and windows out of range are refused naming the field, as a body field or a flag', (t) => {
  const error = (r: ReturnType<typeof resolveScale>) => (r.ok ? 'accepted' : r.error);
  t.regex(error(resolveScale({ replicas: 2, maxReplicas: 3 }, DEFAULT_SCALE)), /^body\.replicas: give either body\.replicas \(a fixed count\) or body\.minReplicas\/body\.maxReplicas/);
  t.is(error(resolveScale({ minReplicas: 3, maxReplicas: 2 }, DEFAULT_SCALE)), 'body.minReplicas: minReplicas (3) must not be above maxReplicas (2)');
  t.is(error(resolveScale({ maxReplicas: 1 }, { ...DEFAULT_SCALE, minReplicas: 2, maxReplicas: 3 })), 'body.maxReplicas: minReplicas (2) must not be above maxReplicas (1)');
  t.is(error(resolveScale({ scaleUpWindow: '500ms' }, DEFAULT_SCALE)), 'body.scaleUpWindow: must be between 1s and 86400s, not 500ms');
  t.is(error(resolveScale({ scaleDownWindow: '2d' }, DEFAULT_SCALE)), 'body.scaleDownWindow: must be between 1s and 86400s, not 2d');
  t.regex(error(resolveScale({ minReplicas: 5, maxReplicas: 2 }, DEFAULT_SCALE, '--')), /^--min-replicas: /);
  t.regex(error(resolveScale({ scaleDownWindow: '0s' }, DEFAULT_SCALE, '--')), /^--scale-down-window: /);
});

test('windows are shown as durations parseDuration reads back', (t) => {
  t.is(formatWindow(5000), '5s');
  t.is(formatWindow(60_000), '60s');
  t.is(formatWindow(1500), '1500ms');
});

test('a deployment stored without scale reads as one replica, and its devices get no scale key at all', (t) => {
  t.deepEqual(publicDeployment(stored).scale, { minReplicas: 1, maxReplicas: 1, targetUtilization: 0.7, scaleUpWindow: '5s', scaleDownWindow: '60s' });
  t.like(publicDeployment(stored), { deletedAt: null, deletedBy: null });
  const service = desiredService(stored, 'gw-1', NOW)!;
  t.deepEqual(Object.keys(service), ['name', 'revision', 'image', 'limits', 'keyHash', 'models'], 'what agents before replicas got, key for key');
  t.false('scale' in desiredService({ ...stored, scale: { ...DEFAULT_SCALE } }, 'gw-1', NOW)!, 'an explicit 1..1 is still no key');
});

test('devices get the deployment scale and its current limits whatever revision they are on', (t) => {
  const scaled: DeploymentRecord = { ...stored, scale: { ...DEFAULT_SCALE, minReplicas: 1, maxReplicas: 3 }, limits: { ...LIMITS, maxQueue: 2, memoryBytes: 64 * 1024 * 1024 } };
  const onStable = desiredService(scaled, 'gw-1', NOW)!;
  const onOld = desiredService(scaled, 'gw-old', NOW)!;
  t.like(onStable, { revision: 2, image: image(2), limits: scaled.limits, scale: scaled.scale });
  t.like(onOld, { revision: 1, image: image(1), limits: scaled.limits, scale: scaled.scale }, 'the old revision with the new limits');
  t.deepEqual(publicDeployment(scaled).scale, { minReplicas: 1, maxReplicas: 3, targetUtilization: 0.7, scaleUpWindow: '5s', scaleDownWindow: '60s' });
});

test('the CLI names its flags: deploy --min-replicas 2 alone is above the default maximum of 1; an update leaves the maximum to the hub', (t) => {
  const flags = { build: 3, target: [{ key: 'site', value: 'lab' }], minReplicas: 2 };
  t.throws(() => deployRequest('iris', flags), { message: /^--min-replicas: minReplicas \(2\) must not be above maxReplicas \(1\)/ });
  t.like(deployRequest('iris', { ...flags, maxReplicas: 3 }), { minReplicas: 2, maxReplicas: 3 });
  t.like(updateRequest({ minReplicas: 2 }), { minReplicas: 2 });
});
