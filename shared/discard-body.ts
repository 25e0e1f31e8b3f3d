/**
 * What a server does with a request body it refused before reading it (a 401, 413 or 429 on an
 * upload): read and drop the rest, within bounds, before the connection may close.
 */
import type { IncomingMessage } from 'node:http';

/**
 * How much of a refused body is still read, and for how long, before the connection is cut.
 * Closing at once would leave the client's bytes unread, the kernel would answer them with a reset,
 * and a client still writing its upload could see EPIPE instead of the answer. Bounded, so a client
 * that keeps sending cannot hold the server busy.
 */
const LINGER_BYTES = 16 * 1024 * 1024;
const LINGER_MS = 10_000;

export function discardRestOfBody(raw: IncomingMessage): void {
  if (raw.complete || raw.destroyed) return;
  let discarded = 0;
  const cut = () => raw.socket.destroy();
  const timer = setTimeout(cut, LINGER_MS).unref();
  raw.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) cut();
  });
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
}
