/**
 * The REST side of a deployment's limits derives from the protocol's bounds: what the hub accepts
 * is what a device accepts, checked on parsed values where JSON Schema sees only text.
 */
import test from 'ava';
import { memoryLimit } from '../../shared/api/deployments.js';
import { rolloutRequestProblem } from '../../shared/api/rollouts.js';
import { deploymentProblem } from '../../hub/fleet/desired-states.js';
import type { DeploymentRecord } from '../../hub/store/store.js';

const AT = '2026-11-01T00:00:00.000Z';
const IMAGE = `reg/iris@sha256:${'1'.repeat(64)}`;
const LIMITS = { maxConcurrent: 1, maxQueue: 10, memoryBytes: 256 * 1024 * 1024, cpus: 0.5 };
const record = (limits: DeploymentRecord['limits']): DeploymentRecord => ({
  service: 'iris',
  revision: 2,
  image: IMAGE,
  digest: `sha256:${'1'.repeat(64)}`,
  build: null,
  models: [],
  target: { site: 'lab' },
  limits,
  keyId: 'abcdefgh',
  keyHash: 'f'.repeat(64),
  stableRevision: 1,
  revisions: [1, 2].map((revision) => ({ revision, image: IMAGE, digest: `sha256:${'1'.repeat(64)}`, build: null, models: [], limits: revision === 1 ? LIMITS : limits, createdAt: AT })),
  assignments: {},
  rollout: { id: 1, kind: 'update', revision: 2, strategy: 'all-at-once', phase: 'running', devices: ['gw-1'] },
  createdAt: AT,
  createdBy: { keyId: 'k', keyName: 'admin' },
  updatedAt: AT,
});

test('a memory limit is checked as the number of bytes it means, inclusive bounds 4 MiB and 1 TiB', (t) => {
  t.deepEqual(memoryLimit('4m', 'body.memory'), { ok: true, value: 4 * 1024 * 1024 });
  t.deepEqual(memoryLimit('1t', 'body.memory'), { ok: true, value: 1024 ** 4 });
  for (const text of ['1k', '4194303', '1025g', '99999999999999999999t', 'lots']) {
    const checked = memoryLimit(text, 'body.memory');
    t.false(checked.ok, text);
    t.regex(checked.ok ? '' : checked.error, /^body\.memory: must be .*between 4\.0 MB and 1\.0 TB/, text);
  }
});

test('rollout durations are bounded by value, naming the field', (t) => {
  t.is(rolloutRequestProblem({ soak: '30d', deviceTimeout: '720h', offlineWait: '0s' }, 'body.rollout'), null);
  t.is(rolloutRequestProblem({ offlineWait: '30.5d' }, 'body.rollout'), 'body.rollout.offlineWait: must be at most 30d, not 30.5d');
  t.regex(rolloutRequestProblem({ soak: '99999999999999999999d' }, 'r') ?? '', /^r\.soak:/);
});

test('a stored deployment is a problem when a device would refuse it at any revision, and says where', (t) => {
  t.is(deploymentProblem(record(LIMITS)), null);
  // Limits are the deployment's: every revision carries them, the first one says so.
  t.is(deploymentProblem(record({ ...LIMITS, memoryBytes: 1024 })), 'revision 1: limits.memoryBytes: must be >= 4194304');
  t.regex(deploymentProblem(record({ ...LIMITS, cpus: 1e9 })) ?? '', /^revision 1: limits\.cpus/);
  t.regex(deploymentProblem({ ...record(LIMITS), scale: { minReplicas: 1, maxReplicas: 65, targetUtilization: 0.7, scaleUpWindowMs: 5000, scaleDownWindowMs: 60_000 } }) ?? '', /^revision 1: scale\.maxReplicas/);
  t.regex(deploymentProblem({ ...record(LIMITS), revisions: null } as unknown as DeploymentRecord) ?? '', /^damaged: /, 'a record edited into garbage is a problem, not a crash');
});
