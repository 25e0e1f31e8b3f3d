/**
 * Per-service admission: at most `maxConcurrent` requests upstream at once and at most `maxQueue`
 * waiting, first in first out. A request beyond the queue is refused at once (the gateway answers
 * 429); one that waits longer than the queue timeout gives up (503). Limits are read per request,
 * so a new revision's limits apply from its first request.
 */
import type { Clock } from '../../shared/clock.js';

export type Admission = { ok: true; release: () => void } | { ok: false; reason: 'queue-full' | 'queue-timeout' | 'aborted' };

interface Waiter {
  admit: () => void;
  timer: unknown;
  done: boolean;
}

export class ServiceLimiter {
  #inFlight = 0;
  readonly #queue: Waiter[] = [];

  constructor(private readonly clock: Clock) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#queue.length;
  }

  acquire(limits: { maxConcurrent: number; maxQueue: number }, queueTimeoutMs: number, signal?: AbortSignal): Promise<Admission> {
    if (this.#inFlight < limits.maxConcurrent && this.#queue.length === 0) return Promise.resolve(this.admitted(limits));
    if (this.#queue.length >= limits.maxQueue) return Promise.resolve({ ok: false, reason: 'queue-full' });
    return new Promise((resolve) => {
      const waiter: Waiter = {
        done: false,
        timer: null,
        admit: () => {
          if (waiter.done) return;
          waiter.done = true;
          this.clock.clearTimeout(waiter.timer);
          resolve(this.admitted(limits));
        },
      };
      const leave = (reason: 'queue-timeout' | 'aborted') => {
        if (waiter.done) return;
        waiter.done = true;
        this.#queue.splice(this.#queue.indexOf(waiter), 1);
        resolve({ ok: false, reason });
      };
      waiter.timer = this.clock.setTimeout(() => leave('queue-timeout'), queueTimeoutMs);
      signal?.addEventListener('abort', () => leave('aborted'), { once: true });
      this.#queue.push(waiter);
    });
  }

  private admitted(limits: { maxConcurrent: number }): Admission {
    this.#inFlight += 1;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight -= 1;
        if (this.#inFlight < limits.maxConcurrent) this.#queue.shift()?.admit();
      },
    };
  }
}
