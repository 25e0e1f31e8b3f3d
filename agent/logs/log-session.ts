/**
 * One on-demand log session: reads lines from a source and sends them to the hub in `logs`
 * messages, in order, batched below the broker's message size, slowed to a byte rate, and ended
 * (with a last message carrying `end`) when the source ends (`done`), at the byte cap (`limit`),
 * after the time cap or when the hub stops renewing its lease (`timeout`), when the hub stops it
 * (`stopped`), or when reading fails (`error`).
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { LOG_SESSION_LIMITS, PROTOCOL_VERSION, type LogEndReason, type LogLine, type LogsMessage } from '../../shared/protocol.js';
import { ByteRateLimit } from './rate-limit.js';

/** A batch goes once it holds this much: well below MAX_MESSAGE_BYTES even with the largest line added. */
export const BATCH_BYTES = 64 * 1024;
/** While following, lines wait at most this long for company. */
export const FLUSH_MS = 200;

export interface LogSessionOptions {
  id: string;
  /** The lines to send; must end when `signal` aborts. */
  source(signal: AbortSignal): AsyncIterable<LogLine>;
  send(message: LogsMessage): Promise<void>;
  clock: Clock;
  logger: Logger;
  maxBytes: number;
  maxMs: number;
  leaseMs: number;
  bytesPerSecond: number;
}

/** The bytes a line costs: as it goes over the wire. */
export function lineBytes(line: LogLine): number {
  return Buffer.byteLength(JSON.stringify(line));
}

/** A line cut to the protocol's length, marked with `…`. */
export function capLine(text: string): string {
  return text.length > LOG_SESSION_LIMITS.maxLineChars ? `${text.slice(0, LOG_SESSION_LIMITS.maxLineChars)}…` : text;
}

export class LogSession {
  readonly #abort = new AbortController();
  readonly #rate: ByteRateLimit;
  #reason: { reason: LogEndReason; message?: string } | undefined;
  #pending: LogLine[] = [];
  #pendingBytes = 0;
  #sent = 0;
  #seq = 0;
  #flushTimer: unknown = null;
  #leaseTimer: unknown = null;
  #sending: Promise<void> = Promise.resolve();

  constructor(private readonly o: LogSessionOptions) {
    this.#rate = new ByteRateLimit({ bytesPerSecond: o.bytesPerSecond, burstBytes: Math.max(BATCH_BYTES, o.bytesPerSecond), clock: o.clock });
  }

  get id(): string {
    return this.o.id;
  }

  /** Runs to the end; resolves with why it ended, once the last message went (or failed). */
  async run(): Promise<LogEndReason> {
    const { clock } = this.o;
    const deadline = clock.setTimeout(() => this.stop('timeout', `the session reached its ${Math.round(this.o.maxMs / 1000)} s limit`), this.o.maxMs);
    this.renew();
    try {
      for await (const line of this.o.source(this.#abort.signal)) {
        if (this.#reason) break;
        const bytes = lineBytes(line);
        if (this.#sent + bytes > this.o.maxBytes) {
          this.stop('limit', `the session reached its ${this.o.maxBytes} byte limit`);
          break;
        }
        if (this.#rate.delayFor(bytes) > 0) this.#flush();
        if (!(await this.#rate.take(bytes, this.#abort.signal))) break;
        this.#sent += bytes;
        this.#pending.push(line);
        this.#pendingBytes += bytes;
        if (this.#pendingBytes >= BATCH_BYTES) this.#flush();
        else this.#flushTimer ??= clock.setTimeout(() => this.#flush(), FLUSH_MS);
      }
    } catch (err) {
      this.stop('error', (err as Error).message);
    } finally {
      clock.clearTimeout(deadline);
      clock.clearTimeout(this.#leaseTimer);
      this.#abort.abort();
    }
    const end = this.#reason ?? { reason: 'done' as const };
    this.#flush(end);
    await this.#sending;
    this.o.logger.info({ session: this.o.id, reason: end.reason, message: end.message, bytes: this.#sent }, 'log session ended');
    return end.reason;
  }

  /** Ends the session (the first reason given wins). */
  stop(reason: LogEndReason, message?: string): void {
    this.#reason ??= message === undefined ? { reason } : { reason, message };
    this.#abort.abort();
  }

  /** The hub still reads: the lease starts again. */
  renew(): void {
    this.o.clock.clearTimeout(this.#leaseTimer);
    this.#leaseTimer = this.o.clock.setTimeout(() => this.stop('timeout', `the hub did not renew the session for ${Math.round(this.o.leaseMs / 1000)} s`), this.o.leaseMs);
  }

  /** Sends what is pending (and the end, if given), after whatever is being sent. */
  #flush(end?: { reason: LogEndReason; message?: string }): void {
    this.o.clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#pending.length === 0 && !end) return;
    const message: LogsMessage = { v: PROTOCOL_VERSION, session: this.o.id, seq: this.#seq++, lines: this.#pending, ...(end ? { end } : {}) };
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#sending = this.#sending.then(
      () => this.o.send(message),
    ).catch((err: unknown) => {
      // The hub cannot get the rest in order either: stop.
      this.o.logger.warn({ session: this.o.id, err: (err as Error).message }, 'could not send log lines; ending the session');
      this.stop('error', 'could not send log lines');
    });
  }
}
