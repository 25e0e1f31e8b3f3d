import type { IncomingMessage } from 'node:http';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

/**
 * The upload body, read so that a refusal part-way (too large, a bad archive entry) leaves the
 * request open: the error handler answers and discards the rest instead of resetting the socket.
 * A client that sends nothing for `idleMs` fails it with 408: the request timeout is an hour (for
 * large models on slow links), too long to hold a socket and a temp file for a stalled one. Only
 * the wait for the client counts, not the time the store takes with a chunk.
 */
export async function* uploadBody(raw: IncomingMessage, idleMs: number): AsyncGenerator<Uint8Array> {
  const chunks = raw.iterator({ destroyOnReturn: false });
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new EdgemlError(ErrorCodes.HUB_REQUEST_TIMEOUT, `the upload stopped: no data for ${idleMs / 1000} s`, { httpStatus: 408 })), idleMs);
      });
      // race() subscribes to the pending read, so its later failure (the socket closing) is handled.
      const next = await Promise.race([chunks.next(), stalled]).finally(() => clearTimeout(timer));
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Not awaited: after a stall the read is still pending, and the return waits for it.
    chunks.return?.().catch(() => {});
  }
}
