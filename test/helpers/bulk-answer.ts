/** A container that answers a large body as fast as its reader lets it: for the gateway's backpressure tests. */
import type { ServerResponse } from 'node:http';
import type { ExecutionContext } from 'ava';
import { waitFor } from './wait.js';

/** Writes `total` bytes, waiting for `drain`; returns how many it has written so far. */
export function writeBulk(res: ServerResponse, total: number): () => number {
  let written = 0;
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const more = () => {
    while (written < total) {
      written += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', more);
    }
    res.end();
  };
  more();
  return () => written;
}

/**
 * Waits until the writer stops (nobody reads), then checks it stopped well short of `total`:
 * socket buffers along the way hold some megabytes, the rest must wait for the reader.
 */
export async function assertStalls(t: ExecutionContext, written: () => number, total: number): Promise<void> {
  let last = -1;
  await waitFor('the container to stall', () => {
    const now = written();
    const stalled = now > 0 && now === last;
    last = now;
    return stalled;
  }, 10_000, 300);
  t.true(written() < total / 2, `the container wrote ${written()} of ${total} bytes to a client that reads nothing`);
}
