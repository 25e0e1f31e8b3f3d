/**
 * How many replicas of each service the device should run: the autoscaler's answer
 * (agent/scale/), or the fixed minimum. The reconciler asks it on every wave and clamps the answer
 * to the service's min..max; whoever changes its answer triggers a pass.
 */
import { scaleOf, type DesiredService, type ScaleDecision } from '../../shared/protocol.js';

export interface ReplicaTarget {
  /**
   * `running`: the trusted replicas the device runs now, so a restarted agent carries on with the
   * count it had instead of falling back to the minimum under load.
   */
  desired(service: DesiredService, running: number): number;
  /** What reports carry beside the counts: why the resource guard holds the count, and the last decision. */
  status(service: string): { capacity?: string; lastScale?: ScaleDecision };
}

/** No autoscaler: each service runs its minimum. */
export const fixedReplicas: ReplicaTarget = {
  desired: (service) => scaleOf(service).minReplicas,
  status: () => ({}),
};

/** `n` within the service's min..max. */
export function clampReplicas(service: DesiredService, n: number): number {
  const { minReplicas, maxReplicas } = scaleOf(service);
  return Math.min(maxReplicas, Math.max(minReplicas, Math.floor(n)));
}
