import type { Clock } from '../../shared/clock.js';

/** A clock that only tells the time it is set to; code under test that sets timers fails loudly. */
export class FakeClock implements Clock {
  constructor(public ms: number) {}
  now(): number {
    return this.ms;
  }
  setTimeout(): unknown {
    throw new Error('FakeClock.setTimeout is not implemented');
  }
  clearTimeout(): void {
    throw new Error('FakeClock.clearTimeout is not implemented');
  }
}

/** A clock whose timers fire only when the test moves time forward with `advance`. */
export class ManualClock implements Clock {
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  constructor(public ms: number) {}
  now(): number {
    return this.ms;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.ms + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  pending(): number {
    return this.#timers.size;
  }
  /** Moves time forward, firing every timer that comes due, in order. */
  advance(ms: number): void {
    const until = this.ms + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.ms = due[1].at;
      due[1].fn();
    }
    this.ms = until;
  }
}
