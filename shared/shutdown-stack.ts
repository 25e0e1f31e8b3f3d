/**
 * Stops what a process started, newest first: on a clean shutdown, and when start-up fails half way
 * (a half-started process must not linger on an open listener).
 */
export class ShutdownStack {
  private readonly stops: Array<() => Promise<void>> = [];

  push(stop: () => Promise<void>): void {
    this.stops.push(stop);
  }

  /** Runs every stop once, even when one throws; rethrows the first failure. */
  async stopAll(): Promise<void> {
    let failure: unknown;
    for (let stop = this.stops.pop(); stop; stop = this.stops.pop()) {
      try {
        await stop();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure) throw failure;
  }
}
