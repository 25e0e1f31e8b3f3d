/**
 * Capped exponential backoff with full jitter. `random` is injected so tests are deterministic.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export const defaultBackoff: BackoffPolicy = { initialMs: 1000, maxMs: 60_000, factor: 2 };

export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, attempt));
  // Full jitter spreads a fleet that lost its hub at the same moment; the floor keeps it from hammering.
  const floor = Math.min(policy.initialMs, ceiling) / 2;
  return Math.round(floor + random() * (ceiling - floor));
}
