import type { Clock } from '../../shared/clock.js';

/**
 * `promise`, or a rejection once `ms` have passed on `clock`. The work itself is not cancelled (a
 * system probe or an MQTT publish cannot be): the caller just stops waiting for it.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, clock: Clock, what: string): Promise<T> {
  let timer: unknown;
  const expired = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clock.clearTimeout(timer));
}
