/**
 * Failed launches, per rollout (`rolloutKey`): how many times in a row, and when the next try may
 * start (capped exponential backoff with jitter). A rejection that can never pass (no image for the
 * platform) is final: it waits for a new desired state.
 */
import { backoffDelay, type BackoffPolicy } from '../../shared/backoff.js';
import type { Clock } from '../../shared/clock.js';

interface Failures {
  attempts: number;
  retryAt: number;
  final: boolean;
}

export class RolloutFailures {
  readonly #byKey = new Map<string, Failures>();

  constructor(private readonly o: { clock: Clock; backoff: BackoffPolicy }) {}

  /** One more failure; the attempts so far, and how long until the next try (null: never). */
  failed(key: string, final: boolean): { attempts: number; retryInMs: number | null } {
    const attempts = (this.#byKey.get(key)?.attempts ?? 0) + 1;
    const delay = backoffDelay(attempts - 1, this.o.backoff);
    this.#byKey.set(key, { attempts, retryAt: this.o.clock.now() + delay, final });
    return { attempts, retryInMs: final ? null : delay };
  }

  succeeded(key: string): void {
    this.#byKey.delete(key);
  }

  /** Rollouts that may not launch now. */
  blocked(): Set<string> {
    const now = this.o.clock.now();
    return new Set([...this.#byKey].filter(([, f]) => f.final || f.retryAt > now).map(([key]) => key));
  }

  /** How long until the first of these rollouts may be tried again; null when none waits for a retry. */
  nextRetryMs(keys: readonly string[]): number | null {
    const retries = keys.map((k) => this.#byKey.get(k)).filter((f) => f && !f.final).map((f) => f!.retryAt);
    return retries.length ? Math.max(0, Math.min(...retries) - this.o.clock.now()) : null;
  }
}
