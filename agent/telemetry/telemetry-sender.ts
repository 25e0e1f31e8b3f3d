/**
 * Drains the telemetry outbox over the hub link (issue 7 part 3): while connected, batches go out
 * as QoS 1 publishes, several at a time, and each leaves the outbox only once the broker's PUBACK
 * came. A publish that fails or hangs leaves its batch queued for a later attempt: the hub stores
 * each id once, so sending one twice costs bandwidth, never a double count.
 *
 * Nothing polls: a pass runs when a batch is appended, when the link (re)connects, when a publish
 * settles, and when a backoff after a failure ends. Metrics cannot be starved by captures or labels:
 * the outbox hands out metrics first, and the other lanes never take the last publish slot.
 */
import { backoffDelay, type BackoffPolicy } from '../../shared/backoff.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { decodeMessage, type TelemetryBatch } from '../../shared/protocol.js';
import { withDeadline } from './deadline.js';
import type { Batch, Lane, Outbox } from './outbox.js';

/** The part of the hub link the sender uses. */
export interface TelemetryLink {
  connected(): boolean;
  /** Resolves on the broker's PUBACK. */
  publish(channel: 'telemetry', message: TelemetryBatch): Promise<void>;
}

export interface TelemetrySenderOptions {
  outbox: Pick<Outbox, 'next' | 'ack' | 'release'>;
  clock: Clock;
  logger: Logger;
  /** Publishes waiting for their PUBACK at once; at least 2 (one is kept for metrics). Default 8. */
  maxInFlight?: number;
  /** A publish with no PUBACK by then is given up on; its batch goes again later. Default 30 s. */
  publishTimeoutMs?: number;
  /** Pause after failed publishes before taking more batches. */
  backoff?: BackoffPolicy;
}

export const DEFAULT_MAX_IN_FLIGHT = 8;
export const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;
const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, factor: 2 };

export class TelemetrySender {
  #link: TelemetryLink | null = null;
  /** Batch id → the attempt publishing it (a timed-out attempt may still settle after a newer one began). */
  readonly #inFlight = new Map<string, { lane: Lane }>();
  #pass: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #retryTimer: unknown = null;
  /** Aborted by close: nothing waits out a publish deadline then. */
  readonly #stop = new AbortController();
  #failures = 0;
  #undeliverable = 0;
  readonly #maxInFlight: number;
  readonly #publishTimeoutMs: number;

  constructor(private readonly o: TelemetrySenderOptions) {
    this.#maxInFlight = o.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.#publishTimeoutMs = o.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    if (!Number.isSafeInteger(this.#maxInFlight) || this.#maxInFlight < 2) {
      throw new EdgemlError(ErrorCodes.INTERNAL, `telemetry sender: maxInFlight must be an integer of at least 2, not ${this.#maxInFlight}`);
    }
  }

  /** Separate from the constructor: batches may be appended (and `wake` called) before the link exists. */
  start(link: TelemetryLink): void {
    this.#link = link;
    this.wake();
  }

  /** Something may be waiting: a batch was appended, or a slot freed. */
  wake(): void {
    if (this.#closed || !this.#link) return;
    if (this.#pass) {
      this.#again = true;
      return;
    }
    this.#pass = this.fill(this.#link)
      .catch((err: unknown) => {
        this.o.logger.error({ err }, 'telemetry sender: reading the outbox failed; retrying');
        this.retryLater();
      })
      .finally(() => {
        this.#pass = null;
        if (this.#again) {
          this.#again = false;
          this.wake();
        }
      });
  }

  /** The link (re)connected: a new connection starts without the backoff of the old one. */
  connected(): void {
    this.#failures = 0;
    this.o.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.wake();
  }

  /** Batches dropped because the broker could never take them, since start. */
  undeliverable(): number {
    return this.#undeliverable;
  }

  /**
   * Takes no more batches. Publishes in flight are not waited for (the link may be down): their
   * batches stay queued and go again at the next start.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    this.o.clock.clearTimeout(this.#retryTimer);
    await this.#pass;
  }

  private async fill(link: TelemetryLink): Promise<void> {
    while (!this.#closed && link.connected() && this.#retryTimer === null && this.#inFlight.size < this.#maxInFlight) {
      const batch = await this.o.outbox.next();
      if (!batch) return;
      // Captures and labels come once the metrics lane is empty, but they must not take the last
      // slot: this one is offered again (released, or it would stay out until a restart).
      if (batch.lane !== 'metrics' && this.inFlightBesideMetrics() >= this.#maxInFlight - 1) {
        await this.o.outbox.release(batch.id);
        return;
      }
      // What the broker runs on receipt: a batch that fails it would be refused on every attempt.
      const decoded = decodeMessage('telemetry', batch.bytes);
      if (!decoded.ok) {
        await this.dropUndeliverable(batch, decoded.error);
        continue;
      }
      this.send(link, batch, decoded.value);
    }
  }

  private send(link: TelemetryLink, batch: Batch, message: TelemetryBatch): void {
    const attempt = { lane: batch.lane };
    this.#inFlight.set(batch.id, attempt);
    void this.deliver(link, batch, message).finally(() => {
      if (this.#inFlight.get(batch.id) === attempt) this.#inFlight.delete(batch.id);
      this.wake();
    });
  }

  /**
   * Resolves once the batch is acked, or its publish failed (it goes again after the backoff);
   * never rejects. A publish past its deadline is still mqtt.js' (it resends it after a reconnect):
   * it keeps its slot until it settles, so the same batch is never published twice at once and
   * copies cannot pile up in mqtt.js' store while the hub is slow.
   */
  private async deliver(link: TelemetryLink, batch: Batch, message: TelemetryBatch): Promise<void> {
    const published = link.publish('telemetry', message);
    const settled = published.then(
      () => true,
      () => false,
    );
    try {
      await withDeadline(published, this.#publishTimeoutMs, this.o.clock, 'telemetry publish', this.#stop.signal);
    } catch (err) {
      // Shutting down: the batch stays queued for the next start.
      if (this.#closed) return;
      this.o.logger.warn({ id: batch.id, lane: batch.lane, err: (err as Error).message }, 'telemetry batch not acknowledged yet; it stays queued');
      this.retryLater();
      await this.settle(batch.id, await settled);
      return;
    }
    this.#failures = 0;
    await this.settle(batch.id, true);
  }

  /** Tells the outbox how the publish ended: acknowledged (the batch goes), or not (it is offered again). */
  private async settle(id: string, acknowledged: boolean): Promise<void> {
    try {
      if (acknowledged) await this.o.outbox.ack(id);
      else await this.o.outbox.release(id);
    } catch (err) {
      // After close the outbox refuses: the batch goes again at the next start.
      if (!this.#closed) this.o.logger.warn({ id, acknowledged, err: (err as Error).message }, 'telemetry sender: could not settle a batch in the outbox; it will be sent again');
    }
  }

  private async dropUndeliverable(batch: Batch, reason: string): Promise<void> {
    this.#undeliverable += 1;
    this.o.logger.error({ id: batch.id, lane: batch.lane, reason, undeliverable: this.#undeliverable }, 'telemetry batch the broker would refuse; dropped');
    await this.o.outbox.ack(batch.id);
  }

  private retryLater(): void {
    if (this.#closed || this.#retryTimer !== null) return;
    const delay = backoffDelay(this.#failures++, this.o.backoff ?? DEFAULT_BACKOFF);
    this.#retryTimer = this.o.clock.setTimeout(() => {
      this.#retryTimer = null;
      this.wake();
    }, delay);
  }

  private inFlightBesideMetrics(): number {
    let n = 0;
    for (const a of this.#inFlight.values()) if (a.lane !== 'metrics') n += 1;
    return n;
  }

}
