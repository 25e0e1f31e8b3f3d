/**
 * The autoscaler's rule, pure: from the load samples of one service, how many replicas it should
 * run (issue 15 item 3, after Knative's stable window and Azure ML's target utilisation).
 * - Up when the average of requests in flight and queued per ready replica over the scale-up window
 *   is above targetUtilization × maxConcurrent, straight to the count that average total load asks
 *   for (several replicas at once: a burst should not wait a window per replica).
 * - Down one replica at a time, when no sample over the scale-down window needed the current count,
 *   and then one more every DOWN_STEP_MS while that stays true: a long window already proved the
 *   load is gone, so 3 → 1 takes the window plus a step, not a window per replica.
 * - Only over full windows: a service seen for less than a window has not shown a trend yet.
 */
import { clampReplicas } from '../reconcile/replica-target.js';
import { scaleOf, type DesiredService } from '../../shared/protocol.js';

/** What the gateway saw of one service at one instant. */
export interface LoadSample {
  at: number;
  /** Requests in flight plus queued, over all replicas. */
  load: number;
  ready: number;
}

/** Between two steps down. */
export const DOWN_STEP_MS = 2000;

export type Want =
  | { kind: 'stay' }
  /** `avgLoad` per ready replica and `avgTotal` over the scale-up window; `to` within min..max. */
  | { kind: 'up'; to: number; avgLoad: number; avgTotal: number }
  /** `need`: the most replicas any sample of the scale-down window asked for. */
  | { kind: 'down'; to: number; need: number };

export interface RuleInput {
  service: DesiredService;
  /** Oldest first; may reach further back than either window. */
  samples: readonly LoadSample[];
  now: number;
  /** When the first sample of this service was taken. */
  since: number;
  current: number;
  /** When the count last changed (either way). */
  changedAt: number;
}

const mean = (xs: readonly number[]) => xs.reduce((sum, x) => sum + x, 0) / xs.length;

/** The requests one replica should carry: the share of its concurrency the autoscaler aims to keep busy. */
export function targetPerReplica(service: DesiredService): number {
  return scaleOf(service).targetUtilization * service.limits.maxConcurrent;
}

/** Replicas `load` needs; the tolerance keeps float noise (0.7 × 3 = 2.0999…) from asking one too many at exact multiples. */
function replicasFor(load: number, target: number): number {
  return Math.ceil(load / target - 1e-9);
}

export function decide(input: RuleInput): Want {
  const { service, samples, now, since, current } = input;
  const scale = scaleOf(service);
  const target = targetPerReplica(service);
  const within = (windowMs: number) => samples.filter((s) => s.at > now - windowMs);

  const up = within(scale.scaleUpWindowMs);
  if (now - since >= scale.scaleUpWindowMs && up.length > 0) {
    // No replica ready (all starting, or all lost): the load waits on one, as it would on one replica.
    const avgLoad = mean(up.map((s) => s.load / Math.max(1, s.ready)));
    const avgTotal = mean(up.map((s) => s.load));
    const to = clampReplicas(service, replicasFor(avgTotal, target));
    if (avgLoad > target && to > current) return { kind: 'up', to, avgLoad, avgTotal };
  }

  const down = within(scale.scaleDownWindowMs);
  if (now - since >= scale.scaleDownWindowMs && now - input.changedAt >= DOWN_STEP_MS && down.length > 0) {
    const need = Math.max(...down.map((s) => clampReplicas(service, replicasFor(s.load, target))));
    if (need < current) return { kind: 'down', to: clampReplicas(service, current - 1), need };
  }
  return { kind: 'stay' };
}
