/**
 * One timer for the whole simulated fleet: every simulated pull, health wait, retry and reconnect
 * of every device is an entry in one min-heap, and a single clock timer is armed for the earliest.
 * A thousand devices therefore cost a heap of entries, not a thousand live Node timers, and
 * `stop()` ends all of them at once. The agent's reconcile loop of each device runs on it too
 * (`asClock()`).
 */
import type { Clock } from '../../shared/clock.js';

export interface Scheduled {
  cancel(): void;
}

interface Entry {
  at: number;
  /** Ties run in the order they were scheduled. */
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class Scheduler {
  readonly #heap: Entry[] = [];
  #seq = 0;
  #timer: unknown = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #stopped = false;

  constructor(private readonly clock: Clock) {}

  /** Runs `fn` after `delayMs`; nothing runs once the scheduler is stopped. */
  after(delayMs: number, fn: () => void): Scheduled {
    const entry: Entry = { at: this.clock.now() + Math.max(0, delayMs), seq: this.#seq++, fn, cancelled: false };
    if (this.#stopped) return { cancel: () => undefined };
    this.push(entry);
    this.arm();
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** Resolves after `delayMs`; rejects with the signal's reason once it aborts. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const onAbort = () => {
        scheduled.cancel();
        reject(signal!.reason as Error);
      };
      const scheduled = this.after(delayMs, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  now(): number {
    return this.clock.now();
  }

  /**
   * The scheduler as a `Clock`, for code written against one (the agent's reconcile loop): its
   * timers are entries here, so a thousand reconcilers still cost one Node timer.
   */
  asClock(): Clock {
    return {
      now: () => this.clock.now(),
      setTimeout: (fn, ms) => this.after(ms, fn),
      clearTimeout: (handle) => (handle as Scheduled | null | undefined)?.cancel(),
    };
  }

  /** Entries still waiting (cancelled ones included until their time comes). */
  pending(): number {
    return this.#heap.length;
  }

  /** Drops every entry and the clock timer. */
  stop(): void {
    this.#stopped = true;
    this.#heap.length = 0;
    this.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  private arm(): void {
    const top = this.#heap[0];
    if (!top || top.at >= this.#timerAt) return;
    this.clock.clearTimeout(this.#timer);
    this.#timerAt = top.at;
    this.#timer = this.clock.setTimeout(() => this.fire(), Math.max(0, top.at - this.clock.now()));
  }

  private fire(): void {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    for (let top = this.#heap[0]; top && top.at <= now && !this.#stopped; top = this.#heap[0]) {
      this.pop();
      if (top.cancelled) continue;
      // A callback that throws is a simulator bug: rethrown (uncaught, so loudly) once the other
      // due entries have run and the timer is armed again, never a silently stopped fleet clock.
      try {
        top.fn();
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (!this.#stopped) this.arm();
  }

  private push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.#heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < heap.length && before(heap[l]!, heap[min]!)) min = l;
      if (r < heap.length && before(heap[r]!, heap[min]!)) min = r;
      if (min === i) break;
      [heap[i], heap[min]] = [heap[min]!, heap[i]!];
      i = min;
    }
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
