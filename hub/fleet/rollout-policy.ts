/**
 * How a change of a deployment reaches its devices. One policy for now, all-at-once; staged
 * strategies (batches, canary, health gates) replace this piece without touching the rest.
 */
import type { ROLLOUT_STRATEGIES } from '../../shared/api/deployments.js';

export interface RolloutPolicy {
  readonly strategy: (typeof ROLLOUT_STRATEGIES)[number];
  /** Moves `devices` to the deployment's current revision through `apply` (which writes their desired state). */
  roll(devices: readonly string[], apply: (devices: readonly string[]) => Promise<void>): Promise<void>;
}

export const allAtOnce: RolloutPolicy = {
  strategy: 'all-at-once',
  roll: (devices, apply) => apply(devices),
};
