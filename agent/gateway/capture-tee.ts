import { Transform, type TransformCallback } from 'node:stream';
import type { KeptBody } from './capture.js';

/**
 * A sampled answer's body on its way to the client: passed on unchanged (a stage of the pipe, so
 * the client's pace still holds the container back), its first `limit` bytes kept for the sample
 * and the rest only counted.
 */
export class CaptureTee extends Transform {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #bytes = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#kept < this.limit) {
      const part = chunk.subarray(0, this.limit - this.#kept);
      this.#chunks.push(part);
      this.#kept += part.length;
    }
    done(null, chunk);
  }

  body(): KeptBody {
    return { kept: Buffer.concat(this.#chunks), bytes: this.#bytes };
  }
}
