/**
 * A token bucket over bytes: up to `burstBytes` at once, refilled at `bytesPerSecond`. `take`
 * waits (on the injected clock) until the bytes are there, so a chatty container is slowed down
 * rather than cut; an abort ends the wait early with false.
 */
import type { Clock } from '../../shared/clock.js';

export class ByteRateLimit {
  #tokens: number;
  #at: number;

  constructor(private readonly o: { bytesPerSecond: number; burstBytes: number; clock: Clock }) {
    this.#tokens = o.burstBytes;
    this.#at = o.clock.now();
  }

  /** How long `bytes` must wait, in ms (0: they may go now). */
  delayFor(bytes: number): number {
    this.#refill();
    const missing = Math.min(bytes, this.o.burstBytes) - this.#tokens;
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.o.bytesPerSecond);
  }

  /** Resolves true once the bytes are taken, false if `signal` aborted first. */
  async take(bytes: number, signal: AbortSignal): Promise<boolean> {
    for (let wait = this.delayFor(bytes); wait > 0; wait = this.delayFor(bytes)) {
      if (!(await this.#sleep(wait, signal))) return false;
    }
    // A line larger than the burst drives the bucket negative: the next ones wait for it.
    this.#tokens -= bytes;
    return true;
  }

  #refill(): void {
    const now = this.o.clock.now();
    this.#tokens = Math.min(this.o.burstBytes, this.#tokens + ((now - this.#at) * this.o.bytesPerSecond) / 1000);
    this.#at = now;
  }

  #sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        this.o.clock.clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const onAbort = () => done(false);
      const timer = this.o.clock.setTimeout(() => done(true), ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
