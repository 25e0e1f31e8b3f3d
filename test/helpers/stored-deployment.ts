/** A deployment record as a hub stored it before optional settings (capture, log shipping) existed. */
import type { DeploymentRecord } from '../../hub/store/store.js';

export const AT = '2026-11-01T00:00:00.000Z';
export const NOW = Date.parse(AT);
export const IMAGE = `reg/iris@sha256:${'1'.repeat(64)}`;
export const LIMITS = { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null };

/** One revision of `iris` on `site=lab`, rolled out to gw-1; none of the later optional fields. */
export const storedDeployment: DeploymentRecord = {
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
