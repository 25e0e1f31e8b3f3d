/**
 * sha256 over a byte stream, in the registry's `sha256:HEX` form: the digest the hub records for an
 * upload and the one a download must match.
 */
import { createHash } from 'node:crypto';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Passes bytes through unchanged while hashing and counting them. */
export class DigestMeter extends Transform {
  size = 0;
  private readonly hash = createHash('sha256');

  constructor(private readonly onProgress?: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.onProgress?.(this.size);
    done(null, chunk);
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

export async function digestOf(source: Readable, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
  const meter = new DigestMeter();
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  await pipeline(source, meter, discard, signal ? { signal } : {});
  return { digest: meter.digest(), size: meter.size };
}
