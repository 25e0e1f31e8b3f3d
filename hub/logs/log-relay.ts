/**
 * The hub's half of on-demand device logs: opens a session on a device with `logs.start` (one-shot
 * command channel), keeps its lease with `logs.keepalive`, hands the lines that come back on `logs`
 * to one reader in order, and ends it with `logs.stop` when the reader goes. Bounded like the agent:
 * at most LOG_SESSION_LIMITS.maxSessions per device (409), a session the device stops answering
 * for ends on the hub's own clock too, and a device cannot make the hub hold more than the session's
 * byte cap (plus a batch) or messages too far ahead of the next one.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { LOG_SESSION_LIMITS, PROTOCOL_VERSION, type Command, type CommandAck, type LogEndReason, type LogLine, type LogsMessage, type LogsStartArgs } from '../../shared/protocol.js';

/** How long the device has to acknowledge `logs.start`. */
export const START_ACK_MS = 10_000;
/** Past the session's own limit, how long the hub waits for the device's end before ending it itself. */
const END_GRACE_MS = 15_000;
/** How far ahead of the next message one may come before the session ends with `error` (so at most this many wait for it). */
export const MAX_SEQ_AHEAD = 64;
/** Bytes a device may send past the session's cap (the agent counts the same bytes; this is one batch of leeway). */
export const BYTES_SLACK = 64 * 1024;
/** A reader waiting this long for an entry gets an idle mark (the route writes an empty line, so the connection shows it is alive). */
export const HEARTBEAT_MS = 30_000;

/** What reaches the reader: the device's end reasons except `stopped` (which only the hub asks for). */
export type ReaderEndReason = Exclude<LogEndReason, 'stopped'>;
export type LogEntry = LogLine | { end: { reason: ReaderEndReason; message?: string } };

export interface LogRelayOptions {
  /** Publishes a command to the device (`cmd`, QoS 1). */
  sendCommand(deviceId: string, cmd: Command): Promise<void>;
  isOnline(deviceId: string): boolean;
  clock: Clock;
  logger: Logger;
  ackTimeoutMs?: number;
  keepaliveMs?: number;
  maxMs?: number;
  heartbeatMs?: number;
  newId?: () => string;
}

export type LogRequest = Omit<LogsStartArgs, 'session' | 'maxBytes'>;

/** One reader's session: its entries, in order, ending with an `end`; `null` after HEARTBEAT_MS of nothing. */
export interface LogStream extends AsyncIterable<LogEntry | null> {
  /** The reader went away: the device is told to stop. */
  close(): void;
}

interface Open {
  deviceId: string;
  queue: LogEntry[];
  wake: (() => void) | null;
  nextSeq: number;
  /** Messages that came before an earlier one (QoS 1 may reorder after a reconnect). */
  early: Map<number, LogsMessage>;
  /** Line bytes the device sent (queued, waiting or read): held against the session's cap. */
  received: number;
  ended: boolean;
  keepalive: unknown;
  deadline: unknown;
}

export class LogRelay {
  readonly #sessions = new Map<string, Open>();
  readonly #acks = new Map<string, { deviceId: string; resolve: (ack: CommandAck | null) => void }>();
  readonly #newId: () => string;

  constructor(private readonly o: LogRelayOptions) {
    this.#newId = o.newId ?? (() => randomBytes(9).toString('base64url'));
  }

  /** Sessions open now on this device. */
  countFor(deviceId: string): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.deviceId === deviceId) n++;
    return n;
  }

  /**
   * Starts a session, once the device acknowledged it. Rejects with HUB_DEVICE_OFFLINE (409) when
   * the device is not online or does not answer, HUB_LOG_SESSIONS_FULL (409) past the limit.
   */
  async open(deviceId: string, request: LogRequest): Promise<LogStream> {
    if (!this.o.isOnline(deviceId)) throw new EdgemlError(ErrorCodes.HUB_DEVICE_OFFLINE, `device ${deviceId} is not online: its logs cannot be read now`, { httpStatus: 409 });
    if (this.countFor(deviceId) >= LOG_SESSION_LIMITS.maxSessions) {
      throw new EdgemlError(ErrorCodes.HUB_LOG_SESSIONS_FULL, `device ${deviceId} already streams ${LOG_SESSION_LIMITS.maxSessions} log sessions: end one first`, { httpStatus: 409 });
    }
    const session = this.#newId();
    const open: Open = { deviceId, queue: [], wake: null, nextSeq: 0, early: new Map(), received: 0, ended: false, keepalive: null, deadline: null };
    // Registered before the command goes: the first lines may come right behind the ack.
    this.#sessions.set(session, open);
    let ack: CommandAck | null;
    try {
      ack = await this.#command(deviceId, 'logs.start', { ...request, session, maxBytes: LOG_SESSION_LIMITS.maxBytes });
    } catch (err) {
      this.#sessions.delete(session);
      throw err;
    }
    if (!ack?.ok) {
      this.#sessions.delete(session);
      if (!ack) throw new EdgemlError(ErrorCodes.HUB_DEVICE_OFFLINE, `device ${deviceId} did not answer the request for its logs within ${Math.round(this.#ackMs() / 1000)} s`, { httpStatus: 409 });
      const full = ack.error?.code === ErrorCodes.AGENT_LOG_SESSIONS_FULL;
      throw new EdgemlError(full ? ErrorCodes.HUB_LOG_SESSIONS_FULL : ErrorCodes.HUB_CONFLICT, `device ${deviceId} refused to stream logs: ${ack.error?.message ?? 'no reason given'}`, { httpStatus: 409 });
    }
    // Ended while the ack was on its way (the device's end, offline, the hub stopping): nothing to keep alive.
    if (open.ended) return this.#stream(session, open);
    const { clock } = this.o;
    const renew = () => {
      open.keepalive = clock.setTimeout(() => {
        if (open.ended) return;
        this.#command(deviceId, 'logs.keepalive', { session }, false).catch((err: unknown) => this.o.logger.warn({ deviceId, session, err: (err as Error).message }, 'could not renew a log session'));
        renew();
      }, this.o.keepaliveMs ?? LOG_SESSION_LIMITS.keepaliveMs);
    };
    renew();
    open.deadline = clock.setTimeout(() => this.#end(session, { reason: 'timeout', message: 'the device did not end the session in time' }), (this.o.maxMs ?? LOG_SESSION_LIMITS.maxMs) + END_GRACE_MS);
    this.o.logger.info({ deviceId, session, source: 'service' in request.source ? request.source.service : 'agent', follow: request.follow }, 'device log session opened');
    return this.#stream(session, open);
  }

  /** A `logs` message from a device; one for a session it does not own, or a duplicate, is ignored. */
  message(deviceId: string, message: LogsMessage): void {
    const { session } = message;
    const open = this.#sessions.get(session);
    if (!open || open.deviceId !== deviceId || message.seq < open.nextSeq || open.early.has(message.seq)) return;
    if (message.seq > open.nextSeq + MAX_SEQ_AHEAD) {
      return this.#end(session, { reason: 'error', message: `the device sent log messages out of order (seq ${message.seq}, expected ${open.nextSeq})` });
    }
    open.received += message.lines.reduce((n, l) => n + Buffer.byteLength(JSON.stringify(l)), 0);
    if (open.received > LOG_SESSION_LIMITS.maxBytes + BYTES_SLACK) {
      return this.#end(session, { reason: 'limit', message: `the device sent more than the session's ${LOG_SESSION_LIMITS.maxBytes} bytes` });
    }
    open.early.set(message.seq, message);
    for (let m = open.early.get(open.nextSeq); m; m = open.early.get(open.nextSeq)) {
      open.early.delete(open.nextSeq++);
      open.queue.push(...m.lines);
      if (m.end) return this.#end(session, m.end, false);
    }
    open.wake?.();
  }

  /** A `cmd/ack` from a device. */
  ack(deviceId: string, ack: CommandAck): void {
    const waiting = this.#acks.get(ack.id);
    if (waiting?.deviceId === deviceId) waiting.resolve(ack);
  }

  /** The device went offline: its sessions end now. */
  deviceOffline(deviceId: string): void {
    for (const [session, open] of this.#sessions) if (open.deviceId === deviceId) this.#end(session, { reason: 'device-offline', message: `device ${deviceId} went offline` }, false);
  }

  /** The hub is stopping. */
  close(): void {
    for (const session of [...this.#sessions.keys()]) this.#end(session, { reason: 'error', message: 'the hub is stopping' });
  }

  #ackMs(): number {
    return this.o.ackTimeoutMs ?? START_ACK_MS;
  }

  /** Sends a command; with `wait`, resolves with its ack, or null if none came in time. */
  async #command(deviceId: string, name: Command['name'], args: Record<string, unknown>, wait = true): Promise<CommandAck | null> {
    const id = `${name}-${this.#newId()}`;
    const cmd: Command = { v: PROTOCOL_VERSION, id, name, args };
    if (!wait) {
      await this.o.sendCommand(deviceId, cmd);
      return null;
    }
    return new Promise<CommandAck | null>((resolve, reject) => {
      const timer = this.o.clock.setTimeout(() => done(null), this.#ackMs());
      const done = (ack: CommandAck | null) => {
        this.o.clock.clearTimeout(timer);
        this.#acks.delete(id);
        resolve(ack);
      };
      this.#acks.set(id, { deviceId, resolve: done });
      this.o.sendCommand(deviceId, cmd).catch((err: unknown) => {
        this.o.clock.clearTimeout(timer);
        this.#acks.delete(id);
        reject(err as Error);
      });
    });
  }

  /** Ends a session for its reader; `tellDevice` sends `logs.stop` (not needed once the device ended it). */
  #end(session: string, end: { reason: LogEndReason; message?: string }, tellDevice = true): void {
    const open = this.#sessions.get(session);
    if (!open || open.ended) return;
    open.ended = true;
    open.early.clear();
    this.#sessions.delete(session);
    this.o.clock.clearTimeout(open.keepalive);
    this.o.clock.clearTimeout(open.deadline);
    // `stopped` reaches a reader only from the device (the agent is going away): to it, the device went offline.
    open.queue.push({ end: end.reason === 'stopped' ? { reason: 'device-offline', message: end.message ?? `device ${open.deviceId} stopped the session` } : { ...end, reason: end.reason } });
    open.wake?.();
    this.o.logger.info({ deviceId: open.deviceId, session, reason: end.reason }, 'device log session closed');
    if (tellDevice && this.o.isOnline(open.deviceId)) {
      this.#command(open.deviceId, 'logs.stop', { session }, false).catch((err: unknown) => this.o.logger.warn({ deviceId: open.deviceId, session, err: (err as Error).message }, 'could not stop a log session'));
    }
  }

  #stream(session: string, open: Open): LogStream {
    const relay = this;
    return {
      close: () => relay.#end(session, { reason: 'stopped', message: 'the reader went away' }),
      async *[Symbol.asyncIterator]() {
        const { clock } = relay.o;
        for (;;) {
          const entry = open.queue.shift();
          if (entry) {
            yield entry;
            if ('end' in entry) return;
            continue;
          }
          const idle = await new Promise<boolean>((resolve) => {
            const timer = clock.setTimeout(() => done(true), relay.o.heartbeatMs ?? HEARTBEAT_MS);
            const done = (idle: boolean) => {
              clock.clearTimeout(timer);
              open.wake = null;
              resolve(idle);
            };
            open.wake = () => done(false);
          });
          if (idle) yield null;
        }
      },
    };
  }
}
