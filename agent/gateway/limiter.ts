/**
 * Per-service admission: at most `maxConcurrent` requests upstream at once and at most `maxQueue`
 * waiting, first in first out. A request beyond the queue is refused at once (the gateway answers
 * 429); one that waits longer than the queue timeout gives up (503). Limits are read per request,
 * so a new revision's limits apply from its first request.
 */
import type { Clock } from '../../shared/clock.js';
import type { ServiceLimits } from '../../shared/protocol.js';

export type Admission = { ok: true; release: () => void } | { ok: false; reason: 'queue-full' | 'queue-timeout' | 'aborted' };

type Limits = Pick<ServiceLimits, 'maxConcurrent' | 'maxQueue'>;

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

  /**
   * Whether `acquire` would refuse now. The gateway asks before it reads a body, so a refusal costs
   * no upload; `acquire` still decides, since the queue can fill while the body arrives.
   */
  full(limits: Limits): boolean {
    return !this.free(limits) && this.#queue.length >= limits.maxQueue;
  }

  acquire(limits: Limits, queueTimeoutMs: number, signal?: AbortSignal): Promise<Admission> {
    if (this.free(limits)) return Promise.resolve(this.admitted(limits));
    if (this.full(limits)) return Promise.resolve({ ok: false, reason: 'queue-full' });
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
        this.clock.clearTimeout(waiter.timer);
        this.#queue.splice(this.#queue.indexOf(waiter), 1);
        resolve({ ok: false, reason });
      };
      this.#queue.push(waiter);
      // An abort before this call fires no event: the client is gone already.
      if (signal?.aborted) return leave('aborted');
      waiter.timer = this.clock.setTimeout(() => leave('queue-timeout'), queueTimeoutMs);
      signal?.addEventListener('abort', () => leave('aborted'), { once: true });
    });
  }

  private free(limits: Limits): boolean {
    return this.#inFlight < limits.maxConcurrent && this.#queue.length === 0;
  }

  private admitted(limits: Limits): Admission {
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
