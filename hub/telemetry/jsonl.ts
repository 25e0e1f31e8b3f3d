/**
 * Reads a JSONL file one line at a time without holding the file in memory. A line that is not
 * JSON, or a last line without its newline (a write cut short by a crash or a full disk), is
 * skipped and reported, never thrown: one damaged line must not hide a day of telemetry.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';

export type SkipReason = 'torn' | 'invalid';

export interface Line {
  text: string;
  /** Byte offset just after this line's newline. */
  end: number;
  /** False only for a last line without its newline. */
  complete: boolean;
}

/**
 * Each line of the first `length` bytes (default: all); a missing file has none. A `.gz` file
 * (compaction.ts) is read decompressed, and `length` counts its compressed bytes.
 */
export async function* readLines(path: string, length?: number): AsyncGenerator<Line> {
  if (length === 0) return;
  const file = createReadStream(path, length === undefined ? {} : { end: length - 1 });
  const stream = path.endsWith('.gz') ? file.pipe(createGunzip()) : file;
  // pipe() does not pass the source's errors on: a missing file must still end the loop below.
  if (stream !== file) file.on('error', (err) => stream.destroy(err));
  let rest: Buffer = Buffer.alloc(0);
  let offset = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let buf: Buffer = rest.length ? Buffer.concat([rest, chunk]) : chunk;
      let nl: number;
      while ((nl = buf.indexOf(0x0a)) !== -1) {
        offset += nl + 1;
        yield { text: buf.subarray(0, nl).toString('utf8'), end: offset, complete: true };
        buf = buf.subarray(nl + 1);
      }
      rest = buf;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  } finally {
    stream.destroy();
    file.destroy();
  }
  if (rest.length > 0) yield { text: rest.toString('utf8'), end: offset + rest.length, complete: false };
}

/** Each complete line's JSON value; blank lines are ignored, damaged ones reported to `onSkip`. */
export async function* readJsonLines(path: string, opts: { length?: number | undefined; onSkip: (reason: SkipReason) => void }): AsyncGenerator<unknown> {
  for await (const line of readLines(path, opts.length)) {
    if (line.text.trim() === '') continue;
    if (!line.complete) {
      opts.onSkip('torn');
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line.text);
    } catch {
      opts.onSkip('invalid');
      continue;
    }
    yield value;
  }
}
