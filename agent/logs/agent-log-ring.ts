/**
 * The agent's own recent output, for `edgeml logs --device ID --agent`: the last lines its logger
 * wrote (at most `maxBytes`, in memory, so nothing grows on disk), and the ones it writes next. Log
 * lines never carry a secret (shared/logger.ts redacts them), so they may leave the device.
 */
import { pino, type Logger } from 'pino';
import type { LogLine } from '../../shared/protocol.js';
import { capLine } from './log-session.js';

export const AGENT_LOG_RING_BYTES = 1024 * 1024;

interface Entry {
  at: number;
  line: string;
}

export class AgentLogRing {
  readonly #entries: Entry[] = [];
  #bytes = 0;
  readonly #listeners = new Set<() => void>();
  /** Lines written since the ring was made (positions for followers, which outlive dropped lines). */
  #written = 0;

  constructor(private readonly o: { maxBytes: number; now: () => number } = { maxBytes: AGENT_LOG_RING_BYTES, now: Date.now }) {}

  /** What the logger writes: one or more newline-ended lines. */
  write(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (line === '') continue;
      // Counted as stored (capped), as eviction subtracts it.
      const entry = { at: this.o.now(), line: capLine(line) };
      this.#entries.push(entry);
      this.#bytes += entry.line.length;
      this.#written++;
    }
    while (this.#bytes > this.o.maxBytes && this.#entries.length > 1) this.#bytes -= this.#entries.shift()!.line.length;
    for (const wake of [...this.#listeners]) wake();
  }

  /** The lines kept from `since` (ms) on, the last `tail` of them, then (with `follow`) new ones until `signal` aborts. */
  async *lines(opts: { since?: number; tail?: number; follow: boolean; signal: AbortSignal }): AsyncGenerator<LogLine> {
    const kept = this.#entries.filter((e) => opts.since === undefined || e.at >= opts.since);
    const first = opts.tail === undefined ? kept : kept.slice(Math.max(0, kept.length - opts.tail));
    for (const e of first) yield toLine(e);
    let seen = this.#written;
    while (opts.follow && !opts.signal.aborted) {
      const fresh = Math.min(this.#written - seen, this.#entries.length);
      if (fresh > 0) {
        seen = this.#written;
        for (const e of this.#entries.slice(this.#entries.length - fresh)) yield toLine(e);
        continue;
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#listeners.delete(wake);
          opts.signal.removeEventListener('abort', wake);
          resolve();
        };
        this.#listeners.add(wake);
        opts.signal.addEventListener('abort', wake, { once: true });
      });
    }
  }
}

function toLine(e: Entry): LogLine {
  return { ts: new Date(e.at).toISOString(), source: 'agent', stream: 'stdout', line: e.line };
}

/**
 * Makes `logger` (and every child made from it, before or after) also write into `ring`: pino keeps
 * one destination under a symbol all children share, and its `write` is wrapped in place.
 */
export function teeLogger(logger: Logger, ring: AgentLogRing): void {
  const stream = (logger as unknown as Record<symbol, { write(s: string): unknown }>)[pino.symbols.streamSym];
  if (!stream) return;
  const write = stream.write.bind(stream);
  stream.write = (s: string) => {
    ring.write(s);
    return write(s);
  };
}
