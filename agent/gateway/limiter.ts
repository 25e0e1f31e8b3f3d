/**
 * Per-service admission over the service's replicas: at most `maxConcurrent` requests on each
 * replica in rotation, and one FIFO queue of at most `maxQueue` × (replicas in rotation) for the
 * whole service, so no request waits behind a busy replica while another is free. A request beyond
 * the queue is refused at once (the gateway answers 429); one that waits longer than the queue
 * timeout gives up (503). An admitted request goes to the replica in rotation with the fewest
 * requests in flight, ties taken round robin.
 *
 * The limits and the rotation are read from `rotation()` at every decision, so a change of either
 * applies to the next request and to the queue's next move, with no restart.
 */
import type { Clock } from '../../shared/clock.js';
import type { ServiceLimits } from '../../shared/protocol.js';
import type { Replica } from '../reconcile/routes.js';

export type Limits = Pick<ServiceLimits, 'maxConcurrent' | 'maxQueue'>;

/** What the limiter balances over now: the replicas in rotation (listed and not ejected) and their limits. */
export interface Rotation {
  limits: Limits;
  replicas: readonly Replica[];
}

export type Admission = { ok: true; replica: Replica; release: () => void } | { ok: false; reason: 'queue-full' | 'queue-timeout' | 'aborted' };

export interface AcquireOptions {
  signal?: AbortSignal;
  /**
   * A request that never reached the replica it was given: it goes to the head of the queue, and is
   * never refused for a full queue (it had its place already).
   */
  retry?: boolean;
}

/** A replica with a free slot, and its place in the rotation (for the round robin). */
interface Choice {
  replica: Replica;
  index: number;
}

interface Waiter {
  admit: (pick: Choice) => void;
}

export class ServiceLimiter {
  /** Requests in flight by container id, replicas that left the rotation included until they finish. */
  readonly #inFlight = new Map<string, number>();
  readonly #queue: Waiter[] = [];
  /** Where the round robin among equally loaded replicas starts next. */
  #next = 0;

  constructor(
    private readonly clock: Clock,
    private readonly rotation: () => Rotation,
  ) {}

  get inFlight(): number {
    let n = 0;
    for (const count of this.#inFlight.values()) n += count;
    return n;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Requests in flight on one replica. */
  inFlightOn(container: string): number {
    return this.#inFlight.get(container) ?? 0;
  }

  /**
   * Whether `acquire` would refuse now. The gateway asks before it reads a body, so a refusal costs
   * no upload; `acquire` still decides, since the queue can fill while the body arrives.
   */
  full(): boolean {
    const rotation = this.rotation();
    return this.#pick(rotation) === undefined && this.#queue.length >= rotation.limits.maxQueue * rotation.replicas.length;
  }

  acquire(queueTimeoutMs: number, { signal, retry = false }: AcquireOptions = {}): Promise<Admission> {
    // Slots a change of limits or replicas opened go to those already waiting first.
    this.pump();
    const rotation = this.rotation();
    const pick = this.#queue.length === 0 ? this.#pick(rotation) : undefined;
    if (pick) return Promise.resolve(this.#admitted(pick));
    if (!retry && this.#queue.length >= rotation.limits.maxQueue * rotation.replicas.length) return Promise.resolve({ ok: false, reason: 'queue-full' });
    return new Promise((resolve) => {
      let done = false;
      let timer: unknown = null;
      const waiter: Waiter = {
        admit: (pick) => {
          if (done) return;
          done = true;
          this.clock.clearTimeout(timer);
          resolve(this.#admitted(pick));
        },
      };
      const leave = (reason: 'queue-timeout' | 'aborted') => {
        if (done) return;
        done = true;
        this.clock.clearTimeout(timer);
        this.#queue.splice(this.#queue.indexOf(waiter), 1);
        resolve({ ok: false, reason });
      };
      if (retry) this.#queue.unshift(waiter);
      else this.#queue.push(waiter);
      // An abort before this call fires no event: the client is gone already.
      if (signal?.aborted) return leave('aborted');
      timer = this.clock.setTimeout(() => leave('queue-timeout'), queueTimeoutMs);
      signal?.addEventListener('abort', () => leave('aborted'), { once: true });
    });
  }

  /** Admits waiters, head first, while a replica in rotation has a free slot. */
  pump(): void {
    while (this.#queue.length > 0) {
      const pick = this.#pick(this.rotation());
      if (!pick) return;
      this.#queue.shift()!.admit(pick);
    }
  }

  /** The replica in rotation with the fewest in flight and a free slot; ties round robin. */
  #pick({ limits, replicas }: Rotation): Choice | undefined {
    let best: (Choice & { load: number }) | undefined;
    for (let k = 0; k < replicas.length; k++) {
      const index = (this.#next + k) % replicas.length;
      const replica = replicas[index]!;
      const load = this.inFlightOn(replica.container);
      if (load < limits.maxConcurrent && (!best || load < best.load)) best = { replica, index, load };
    }
    return best;
  }

  #admitted({ replica, index }: Choice): Admission {
    this.#next = index + 1;
    this.#inFlight.set(replica.container, this.inFlightOn(replica.container) + 1);
    let released = false;
    return {
      ok: true,
      replica,
      release: () => {
        if (released) return;
        released = true;
        const left = this.inFlightOn(replica.container) - 1;
        if (left > 0) this.#inFlight.set(replica.container, left);
        else this.#inFlight.delete(replica.container);
        this.pump();
      },
    };
  }
}
