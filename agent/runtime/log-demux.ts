/**
 * Docker's multiplexed log stream (a container without a TTY): frames of an 8-byte header (stream
 * type, 3 zero bytes, big-endian length) and that many bytes, cut anywhere by the transport. With
 * `timestamps`, every line starts with the engine's RFC 3339 time and a space.
 */
import type { ContainerLogLine } from './container-runtime.js';

const HEADER_BYTES = 8;
const STREAMS = { 1: 'stdout', 2: 'stderr' } as const;

/** Splits chunks into lines per stream; call `end()` for a last line without a newline. */
export class LogDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  readonly #partial = { stdout: '', stderr: '' };

  /** The complete lines these bytes finish, in order. */
  push(chunk: Buffer): ContainerLogLine[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: ContainerLogLine[] = [];
    while (this.#pending.length >= HEADER_BYTES) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < HEADER_BYTES + size) break;
      // stdin (0) never carries output; anything else unknown is taken as stdout rather than lost.
      const stream = STREAMS[this.#pending[0] as 1 | 2] ?? 'stdout';
      const text = this.#partial[stream] + this.#pending.subarray(HEADER_BYTES, HEADER_BYTES + size).toString('utf8');
      this.#pending = this.#pending.subarray(HEADER_BYTES + size);
      const lines = text.split('\n');
      this.#partial[stream] = lines.pop() ?? '';
      for (const line of lines) out.push(parseLine(stream, line));
    }
    return out;
  }

  end(): ContainerLogLine[] {
    const out: ContainerLogLine[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#partial[stream] !== '') out.push(parseLine(stream, this.#partial[stream]));
      this.#partial[stream] = '';
    }
    return out;
  }
}

const TIMESTAMPED = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$/s;

function parseLine(stream: 'stdout' | 'stderr', raw: string): ContainerLogLine {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const m = TIMESTAMPED.exec(text);
  // Docker's nanoseconds are more than Date keeps: milliseconds are enough for a log.
  return m ? { ts: new Date(m[1]!).toISOString(), stream, line: m[2]! } : { ts: new Date().toISOString(), stream, line: text };
}
