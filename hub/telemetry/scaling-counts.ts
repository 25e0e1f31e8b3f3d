/**
 * The autoscaler's decisions a metrics batch counts per service (replicas added, removed, and
 * additions the resource guard refused), summed the same way by `/metrics` and telemetry queries.
 * Batches from agents older than replicas carry none and add nothing.
 */
import type { ServiceIntervalMetrics } from '../../shared/protocol.js';

export type ScalingCounts = NonNullable<ServiceIntervalMetrics['scaling']>;

const KINDS = ['up', 'down', 'held'] as const;

export function noScaling(): ScalingCounts {
  return { up: 0, down: 0, held: 0 };
}

export function addScaling(a: ScalingCounts, b: ScalingCounts | undefined): ScalingCounts {
  if (!b) return a;
  const sum = noScaling();
  for (const kind of KINDS) sum[kind] = a[kind] + b[kind];
  return sum;
}
