/**
 * What a start has made so far, closed in reverse order when a later step throws: a start that
 * fails leaves no timer, socket or file handle behind to keep the process up (or to fire later
 * into parts that were never made).
 */
import type { Logger } from '../shared/logger.js';

interface Closable {
  close(): Promise<void> | void;
}

export class StartedParts {
  readonly #parts: Closable[] = [];

  /** Registers a part that is running, and hands it back. */
  add<T extends Closable>(part: T): T {
    this.#parts.push(part);
    return part;
  }

  /** Closes every part, newest first; a part that fails to close does not keep the others open. */
  async closeAll(logger: Logger): Promise<void> {
    for (const part of this.#parts.splice(0).reverse()) {
      try {
        await part.close();
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'could not close a part of the agent after a failed start');
      }
    }
  }
}
