/**
 * Build progress from buildx's plain output. Each build step is a vertex announced as
 * `#12 [linux/arm64 4/7] RUN …` and finished by `#12 DONE 1.2s` or `#12 CACHED`; the totals come
 * from the `k/n` of each platform's stage.
 */
import type { BuildProgress } from '../../shared/api/images.js';

const STEP = /^#(\d+) \[(?:(\S+) )?(\d+)\/(\d+)\] (.*)$/;
const FINISHED = /^#(\d+) (?:DONE\b|CACHED$)/;

export class BuildProgressTracker {
  readonly #steps = new Map<string, { done: boolean }>();
  readonly #totals = new Map<string, number>();
  #current = 'queued';

  /** A phase the builder itself is in (writing the context, testing linux/arm64, …). */
  phase(text: string): void {
    this.#current = text;
  }

  /** Feeds one line of buildx output. */
  line(text: string): void {
    const step = STEP.exec(text);
    if (step) {
      const [, vertex, stage = '', , total, what] = step as unknown as [string, string, string | undefined, string, string, string];
      if (!this.#steps.has(vertex)) this.#steps.set(vertex, { done: false });
      this.#totals.set(stage, Math.max(this.#totals.get(stage) ?? 0, Number(total)));
      this.#current = stage ? `[${stage}] ${what}` : what;
      return;
    }
    const finished = FINISHED.exec(text);
    if (finished) {
      const entry = this.#steps.get(finished[1]!);
      if (entry) entry.done = true;
    }
  }

  snapshot(): BuildProgress {
    let stepsDone = 0;
    for (const s of this.#steps.values()) if (s.done) stepsDone += 1;
    let stepsTotal = 0;
    for (const n of this.#totals.values()) stepsTotal += n;
    return { stepsDone: Math.min(stepsDone, stepsTotal), stepsTotal, current: this.#current };
  }
}
