import type { Clock } from '../../shared/clock.js';

/**
 * `promise`, or a rejection once `ms` have passed on `clock`, or at once when `stop` aborts (a
 * process shutting down must not wait out a deadline, nor be kept alive by its timer). The work
 * itself is not cancelled (a system probe or an MQTT publish cannot be): the caller just stops
 * waiting for it.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, clock: Clock, what: string, stop?: AbortSignal): Promise<T> {
  let timer: unknown;
  let onStop = (): void => {};
  const expired = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    onStop = () => reject(new Error(`${what}: stopped waiting (shutting down)`));
    if (stop?.aborted) onStop();
    else stop?.addEventListener('abort', onStop, { once: true });
  });
  return Promise.race([promise, expired]).finally(() => {
    clock.clearTimeout(timer);
    stop?.removeEventListener('abort', onStop);
  });
}
