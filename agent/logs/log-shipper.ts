/**
 * `shipLogs: error`: follows the output of every running replica of the services that ask for it,
 * and sends their error lines (error-lines.ts) in telemetry batches of kind `logs`, through the
 * outbox's own `logs` lane (its quota drops the oldest when the hub is out of reach).
 *
 * Followers converge on what runs, checked every `pollMs`: one per running container, none twice;
 * stopped when the container goes, its service leaves, or shipping is turned off. A follower reads
 * from when this agent first saw the service shipping or the container was created, whichever is
 * later, so neither an agent restart nor turning shipping on sends old lines; one that ended while
 * its container runs on (the engine's stream broke) starts again after the last line it saw.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { encodeMessage, MAX_MESSAGE_BYTES, MAX_SHIPPED_LINE_CHARS, PROTOCOL_VERSION, type DesiredService, type LogsBatch, type ShippedLogLine } from '../../shared/protocol.js';
import type { ContainerRuntime, ManagedContainer } from '../runtime/container-runtime.js';
import type { Batch } from '../telemetry/outbox.js';
import { isErrorLine, LineRateLimit } from './error-lines.js';

export interface LogShipperOptions {
  runtime: Pick<ContainerRuntime, 'list' | 'logs'>;
  deviceId: string;
  desired: () => readonly DesiredService[];
  append: (batch: Batch) => Promise<void>;
  nextId: () => string;
  clock: Clock;
  logger: Logger;
  /** How often followers are matched to the running containers; default 2 s. */
  pollMs?: number;
  /** Lines wait at most this long for their batch; default 2 s. */
  flushMs?: number;
  /** Per service: lines per second, and at once; default 20 and 100. */
  linesPerSecond?: number;
  burst?: number;
}

/** Well under the broker's message size, whatever the lines' characters. */
const MAX_BATCH_BYTES = MAX_MESSAGE_BYTES / 2;

interface Follower {
  abort: AbortController;
  done: Promise<void>;
}

export function capShippedLine(text: string): string {
  return text.length > MAX_SHIPPED_LINE_CHARS ? `${text.slice(0, MAX_SHIPPED_LINE_CHARS)}…` : text;
}

export class LogShipper {
  readonly #followers = new Map<string, Follower>();
  /** Per container: the time of the last line read and how many lines had that time, to start again after them. */
  readonly #lastTs = new Map<string, { ts: string; atTs: number }>();
  readonly #limits = new Map<string, LineRateLimit>();
  #pending: ShippedLogLine[] = [];
  #pendingBytes = 0;
  #dropped: Record<string, number> = {};
  #appends: Promise<void> = Promise.resolve();
  #pollTimer: unknown = null;
  #flushTimer: unknown = null;
  #closed = false;
  /** Per shipping service, when this agent first saw it shipping (ms since the epoch): nothing older is sent. */
  readonly #shippingSince = new Map<string, number>();

  constructor(private readonly o: LogShipperOptions) {}

  start(): void {
    const tick = () => {
      this.#pollTimer = null;
      void this.sync()
        .catch((err: unknown) => this.o.logger.warn({ err }, 'shipping logs: listing the containers failed'))
        .finally(() => {
          if (!this.#closed) this.#pollTimer = this.o.clock.setTimeout(tick, this.o.pollMs ?? 2000);
        });
    };
    tick();
  }

  /** Containers followed now (for tests and diagnostics). */
  following(): string[] {
    return [...this.#followers.keys()];
  }

  /** Starts and stops followers to match the running replicas of the services shipping logs. */
  async sync(): Promise<void> {
    const shipping = new Set(this.o.desired().filter((s) => s.shipLogs === 'error').map((s) => s.name));
    for (const service of this.#shippingSince.keys()) if (!shipping.has(service)) this.#shippingSince.delete(service);
    for (const service of shipping) if (!this.#shippingSince.has(service)) this.#shippingSince.set(service, this.o.clock.now());
    const containers = shipping.size === 0 ? [] : await this.o.runtime.list(this.o.deviceId);
    if (this.#closed) return;
    const wanted = new Map<string, { c: ManagedContainer; replica: number }>();
    for (const service of shipping) {
      // Numbered among the running ones, in order of creation (a stopped one is on its way out).
      const replicas = containers.filter((c) => c.service === service && c.running).sort((a, b) => a.created - b.created || a.name.localeCompare(b.name));
      replicas.forEach((c, i) => wanted.set(c.id, { c, replica: i + 1 }));
    }
    for (const [id, f] of this.#followers) {
      if (wanted.has(id)) continue;
      f.abort.abort();
      this.#followers.delete(id);
    }
    for (const id of this.#lastTs.keys()) if (!wanted.has(id)) this.#lastTs.delete(id);
    for (const service of this.#limits.keys()) if (!shipping.has(service)) this.#limits.delete(service);
    for (const [id, { c, replica }] of wanted) if (!this.#followers.has(id)) this.#follow(c, replica);
  }

  /** Stops every follower and appends what is held. */
  async close(): Promise<void> {
    this.#closed = true;
    this.o.clock.clearTimeout(this.#pollTimer);
    for (const f of this.#followers.values()) f.abort.abort();
    await Promise.allSettled([...this.#followers.values()].map((f) => f.done));
    this.#followers.clear();
    this.flush();
    await this.#appends;
  }

  /** Queues what is held as one batch (or a few, by size). */
  flush(): void {
    this.o.clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#pending.length === 0 && Object.keys(this.#dropped).length === 0) return;
    const batch: LogsBatch = { v: PROTOCOL_VERSION, kind: 'logs', id: this.o.nextId(), lines: this.#pending, dropped: this.#dropped };
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#dropped = {};
    this.#appends = this.#appends.then(async () => {
      try {
        await this.o.append({ id: batch.id, lane: 'logs', bytes: encodeMessage('telemetry', batch) });
      } catch (err) {
        this.o.logger.error({ err, id: batch.id, lines: batch.lines.length }, 'a batch of shipped logs was lost');
      }
    });
  }

  /** Called for every line read; public for the tests of selection and rate limits. */
  take(service: string, replica: number, l: { ts: string; stream: 'stdout' | 'stderr'; line: string }): void {
    if (!isErrorLine(l.stream, l.line)) return;
    let limit = this.#limits.get(service);
    if (!limit) this.#limits.set(service, (limit = new LineRateLimit({ perSecond: this.o.linesPerSecond ?? 20, burst: this.o.burst ?? 100, clock: this.o.clock })));
    if (!limit.tryTake()) {
      this.#dropped[service] = (this.#dropped[service] ?? 0) + 1;
    } else {
      const line = capShippedLine(l.line);
      this.#pending.push({ ts: l.ts, service, replica, stream: l.stream, line });
      this.#pendingBytes += Buffer.byteLength(line) + 128;
    }
    if (this.#pendingBytes >= MAX_BATCH_BYTES) this.flush();
    else this.#flushTimer ??= this.o.clock.setTimeout(() => this.flush(), this.o.flushMs ?? 2000);
  }

  #follow(c: ManagedContainer, replica: number): void {
    const abort = new AbortController();
    // Where an earlier follower of this container stopped: its newest line's time and how many lines had it.
    const resume = this.#lastTs.get(c.id);
    let repeatsLeft = resume?.atTs ?? 0;
    const fromMs = Math.max(this.#shippingSince.get(c.service) ?? 0, c.created * 1000);
    // The engine takes whole seconds: lines of that second from before `fromMs` are skipped here.
    const since = Math.floor((resume === undefined ? fromMs : Date.parse(resume.ts)) / 1000);
    this.o.logger.info({ service: c.service, container: c.id, replica, from: new Date(fromMs).toISOString() }, 'shipping error lines of a container');
    const done = (async () => {
      try {
        for await (const l of this.o.runtime.logs(c.id, { follow: true, since, signal: abort.signal })) {
          // `since` is in whole seconds: lines of that second already read come again. Lines of one
          // millisecond (a traceback written at once) all count: only as many as were read are skipped.
          if (resume === undefined ? Date.parse(l.ts) < fromMs : l.ts < resume.ts) continue;
          if (resume !== undefined && l.ts === resume.ts && repeatsLeft > 0) {
            repeatsLeft--;
            continue;
          }
          const last = this.#lastTs.get(c.id);
          this.#lastTs.set(c.id, last?.ts === l.ts ? { ts: l.ts, atTs: last.atTs + 1 } : { ts: l.ts, atTs: 1 });
          this.take(c.service, replica, l);
        }
      } catch (err) {
        if (!abort.signal.aborted) this.o.logger.warn({ err, service: c.service, container: c.id }, 'shipping logs: following a container failed; trying again');
      } finally {
        // Ended on its own (container stopped, stream broke): the next sync decides again.
        if (this.#followers.get(c.id)?.abort === abort) this.#followers.delete(c.id);
      }
    })();
    this.#followers.set(c.id, { abort, done });
  }
}
