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
