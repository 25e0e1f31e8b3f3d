/**
 * The agent's on-demand log sessions, driven by the hub's `logs.start`, `logs.keepalive` and
 * `logs.stop` commands: at most LOG_SESSION_LIMITS.maxSessions at once, each bounded by
 * LogSession. Answers are synchronous (the ack says "started"); lines and the end follow on `logs`.
 */
import type { Clock } from '../../shared/clock.js';
import { ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { LOG_SESSION_LIMITS, LogsSessionArgs, LogsStartArgs, PROTOCOL_VERSION, type Command, type CommandAck, type LogLine, type LogsMessage } from '../../shared/protocol.js';
import { compileChecker } from '../../shared/schema.js';
import type { ContainerRuntime } from '../runtime/container-runtime.js';
import type { AgentLogRing } from './agent-log-ring.js';
import { serviceLines } from './container-lines.js';
import { LogSession } from './log-session.js';

/** Default pace of one session: a burst of lines, then this many bytes a second. */
export const LOG_BYTES_PER_SECOND = 128 * 1024;
/**
 * Lines read back (per replica) when the hub names no tail: a container's whole history could be
 * huge, the session would send its oldest megabyte, and a follow would never reach new lines.
 */
export const DEFAULT_TAIL_LINES = 1000;

export interface LogSessionsOptions {
  deviceId: string;
  runtime: Pick<ContainerRuntime, 'list' | 'logs'>;
  agentLog: AgentLogRing;
  send(message: LogsMessage): Promise<void>;
  clock: Clock;
  logger: Logger;
  bytesPerSecond?: number;
  limits?: Partial<Pick<typeof LOG_SESSION_LIMITS, 'maxMs' | 'leaseMs' | 'maxSessions'>>;
}

const checkStart = compileChecker(LogsStartArgs);
const checkSession = compileChecker(LogsSessionArgs);

export class LogSessions {
  readonly #sessions = new Map<string, { session: LogSession; done: Promise<unknown> }>();

  constructor(private readonly o: LogSessionsOptions) {}

  /** Sessions streaming now. */
  active(): number {
    return this.#sessions.size;
  }

  command(cmd: Command): CommandAck {
    const fail = (code: string, message: string): CommandAck => ({ v: PROTOCOL_VERSION, id: cmd.id, ok: false, error: { code, message } });
    const ok = (result: Record<string, unknown>): CommandAck => ({ v: PROTOCOL_VERSION, id: cmd.id, ok: true, result });
    if (cmd.name === 'logs.start') {
      const args = checkStart(cmd.args ?? {});
      if (!args.ok) return fail(ErrorCodes.MESSAGE_INVALID, `logs.start: ${args.error}`);
      if (this.#sessions.has(args.value.session)) return ok({ session: args.value.session, started: false });
      const max = this.o.limits?.maxSessions ?? LOG_SESSION_LIMITS.maxSessions;
      if (this.#sessions.size >= max) return fail(ErrorCodes.AGENT_LOG_SESSIONS_FULL, `this device already streams ${max} log sessions`);
      this.#start(args.value);
      return ok({ session: args.value.session, started: true });
    }
    const args = checkSession(cmd.args ?? {});
    if (!args.ok) return fail(ErrorCodes.MESSAGE_INVALID, `${cmd.name}: ${args.error}`);
    const running = this.#sessions.get(args.value.session);
    // Gone already (ended on its own): nothing to renew or stop, and no error either.
    if (cmd.name === 'logs.keepalive') running?.session.renew();
    else running?.session.stop('stopped', 'the reader went away');
    return ok({ session: args.value.session, active: running !== undefined });
  }

  /** Stops every session and waits for their last messages. */
  async close(): Promise<void> {
    for (const { session } of this.#sessions.values()) session.stop('stopped', 'the agent is stopping');
    await Promise.allSettled([...this.#sessions.values()].map((s) => s.done));
  }

  #start(args: LogsStartArgs): void {
    const since = args.since === undefined ? undefined : Date.parse(args.since);
    const query = { follow: args.follow, tail: args.tail ?? DEFAULT_TAIL_LINES, ...(since === undefined ? {} : { since }) };
    const source = (signal: AbortSignal): AsyncIterable<LogLine> =>
      'service' in args.source
        ? serviceLines(this.o.runtime, { deviceId: this.o.deviceId, service: args.source.service, ...query }, signal)
        : this.o.agentLog.lines({ ...query, signal });
    const session = new LogSession({
      id: args.session,
      source,
      send: this.o.send,
      clock: this.o.clock,
      logger: this.o.logger,
      maxBytes: args.maxBytes,
      maxMs: this.o.limits?.maxMs ?? LOG_SESSION_LIMITS.maxMs,
      leaseMs: this.o.limits?.leaseMs ?? LOG_SESSION_LIMITS.leaseMs,
      bytesPerSecond: this.o.bytesPerSecond ?? LOG_BYTES_PER_SECOND,
    });
    this.o.logger.info({ session: args.session, source: 'service' in args.source ? args.source.service : 'agent', follow: args.follow }, 'log session started');
    const done = session.run().finally(() => this.#sessions.delete(args.session));
    this.#sessions.set(args.session, { session, done });
  }
}
