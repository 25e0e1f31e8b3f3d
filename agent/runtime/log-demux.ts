/**
 * Docker's multiplexed log stream (a container without a TTY): frames of an 8-byte header (stream
 * type, 3 zero bytes, big-endian length) and that many bytes, cut anywhere by the transport. With
 * `timestamps`, every line starts with the engine's RFC 3339 time and a space.
 */
import { StringDecoder } from 'node:string_decoder';
import { LOG_SESSION_LIMITS } from '../../shared/protocol.js';
import type { ContainerLogLine } from './container-runtime.js';

const HEADER_BYTES = 8;
const STREAMS = { 1: 'stdout', 2: 'stderr' } as const;
/**
 * A raw line keeps at most this much, also while its newline has not come (the rest is dropped, so
 * output without newlines cannot grow memory): room for the engine's timestamp, so a cut line is
 * still longer than maxLineChars and is marked with `…` (capLine) downstream.
 */
export const MAX_RAW_LINE_CHARS = LOG_SESSION_LIMITS.maxLineChars + 64;

/** Splits chunks into lines per stream; call `end()` for a last line without a newline. */
export class LogDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  readonly #partial = { stdout: '', stderr: '' };
  // One per stream: a UTF-8 character split across frames is joined, not turned into U+FFFD.
  readonly #decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };

  /** The complete lines these bytes finish, in order. */
  push(chunk: Buffer): ContainerLogLine[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: ContainerLogLine[] = [];
    while (this.#pending.length >= HEADER_BYTES) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < HEADER_BYTES + size) break;
      // stdin (0) never carries output; anything else unknown is taken as stdout rather than lost.
      const stream = STREAMS[this.#pending[0] as 1 | 2] ?? 'stdout';
      const text = this.#partial[stream] + this.#decoders[stream].write(this.#pending.subarray(HEADER_BYTES, HEADER_BYTES + size));
      this.#pending = this.#pending.subarray(HEADER_BYTES + size);
      const lines = text.split('\n');
      this.#partial[stream] = (lines.pop() ?? '').slice(0, MAX_RAW_LINE_CHARS);
      for (const line of lines) out.push(parseLine(stream, line.slice(0, MAX_RAW_LINE_CHARS)));
    }
    return out;
  }

  end(): ContainerLogLine[] {
    const out: ContainerLogLine[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      const last = (this.#partial[stream] + this.#decoders[stream].end()).slice(0, MAX_RAW_LINE_CHARS);
      if (last !== '') out.push(parseLine(stream, last));
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
