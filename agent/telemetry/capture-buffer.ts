/**
 * Captured samples on their way into the outbox's capture lane (issue 7 part 2): gathered in
 * memory into batches that stay well under the broker's message limit, and appended when a batch
 * is full, when its oldest sample has waited `flushEveryMs`, and on close.
 *
 * The gateway hands samples over and moves on: `add` never blocks or throws. While appends fall
 * behind (a slow disk) or fail, memory stays bounded: samples beyond `maxBufferedBytes` are dropped
 * and counted, like a failed batch's. The outbox's own capture quota then bounds the disk, apart
 * from the metrics lane's.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { encodeMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, type CaptureSample, type CapturesBatch } from '../../shared/protocol.js';
import type { Batch } from './outbox.js';

export interface CaptureBufferOptions {
  /** Into the outbox's capture lane (and wake the sender). */
  append: (batch: Batch) => Promise<void>;
  /** Unique per device for good (`batchIds('c')`). */
  nextId: () => string;
  clock: Clock;
  logger: Logger;
  /** The longest a sample waits in memory; default 5 s. */
  flushEveryMs?: number;
  /** A batch is appended once it would pass this many bytes encoded; default 192 KiB. */
  flushBytes?: number;
  /** … or this many samples; default 1000. */
  flushSamples?: number;
  /** Encoded samples held in memory, waiting or being appended, before new ones are dropped; default 2 MiB. */
  maxBufferedBytes?: number;
}

export const DEFAULT_CAPTURE_FLUSH_MS = 5000;
export const DEFAULT_CAPTURE_FLUSH_BYTES = 192 * 1024;
export const DEFAULT_CAPTURE_FLUSH_SAMPLES = 1000;
export const DEFAULT_CAPTURE_BUFFERED_BYTES = 2 * 1024 * 1024;

/** More than `{"v":1,"kind":"captures","id":"…","samples":[]}` takes with the longest id. */
const ENVELOPE_BYTES = 128;

interface Pending {
  samples: CaptureSample[];
  /** Encoded sizes, plus a comma each. */
  bytes: number;
}

const empty = (): Pending => ({ samples: [], bytes: 0 });

export class CaptureBuffer {
  readonly #flushEveryMs: number;
  readonly #flushBytes: number;
  readonly #flushSamples: number;
  readonly #maxBufferedBytes: number;
  #current = empty();
  /** Batches cut are appended one at a time, in order; this never rejects. */
  #appends: Promise<void> = Promise.resolve();
  /** Bytes of every sample held: the current batch, and those cut and not appended yet. */
  #buffered = 0;
  #dropped = 0;
  #timer: unknown = null;
  #closed = false;
  /** One warning per cause per run; the count carries the rest. */
  readonly #warned = new Set<string>();

  constructor(private readonly o: CaptureBufferOptions) {
    this.#flushEveryMs = o.flushEveryMs ?? DEFAULT_CAPTURE_FLUSH_MS;
    this.#flushBytes = Math.min(o.flushBytes ?? DEFAULT_CAPTURE_FLUSH_BYTES, MAX_MESSAGE_BYTES - ENVELOPE_BYTES);
    this.#flushSamples = o.flushSamples ?? DEFAULT_CAPTURE_FLUSH_SAMPLES;
    this.#maxBufferedBytes = o.maxBufferedBytes ?? DEFAULT_CAPTURE_BUFFERED_BYTES;
  }

  /** Samples dropped since the start: over the memory bound, too large for a message, or lost with a batch that could not be appended. */
  dropped(): number {
    return this.#dropped;
  }

  add(sample: CaptureSample): void {
    if (this.#closed) return this.drop('closed', 'a sample arrived after the capture buffer closed');
    const bytes = Buffer.byteLength(JSON.stringify(sample)) + 1;
    if (bytes + ENVELOPE_BYTES > MAX_MESSAGE_BYTES) return this.drop('too-large', 'a captured sample is too large for a telemetry message', { service: sample.service, bytes });
    if (this.#buffered + bytes > this.#maxBufferedBytes) return this.drop('behind', 'captures are dropped: appending them to the outbox falls behind', { buffered: this.#buffered });
    // A batch that would outgrow the budget goes first; a large sample then starts one of its own.
    if (this.#current.samples.length && this.#current.bytes + bytes > this.#flushBytes) this.cut();
    if (!this.#current.samples.length) this.#timer = this.o.clock.setTimeout(() => this.cut(), this.#flushEveryMs);
    this.#current.samples.push(sample);
    this.#current.bytes += bytes;
    this.#buffered += bytes;
    if (this.#current.samples.length >= this.#flushSamples) this.cut();
  }

  /** Appends what is held now and waits for it (and for earlier batches); sampling goes on. */
  async flush(): Promise<void> {
    this.cut();
    await this.#appends;
  }

  /** Appends what is held and waits for it; later samples are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    this.cut();
    await this.#appends;
  }

  /** The current batch is done: queued for its append. */
  private cut(): void {
    this.o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    const batch = this.#current;
    if (!batch.samples.length) return;
    this.#current = empty();
    this.#appends = this.#appends.then(() => this.append(batch));
  }

  private async append(pending: Pending): Promise<void> {
    const batch: CapturesBatch = { v: PROTOCOL_VERSION, kind: 'captures', id: this.o.nextId(), samples: pending.samples };
    try {
      await this.o.append({ id: batch.id, lane: 'capture', bytes: encodeMessage('telemetry', batch) });
    } catch (err) {
      // An invalid sample (a bug) or a failing disk: retrying could hold up every later batch.
      this.#dropped += pending.samples.length;
      this.o.logger.error({ err, id: batch.id, samples: pending.samples.length }, 'a captures batch was lost');
    } finally {
      this.#buffered -= pending.bytes;
    }
  }

  private drop(cause: string, message: string, details: Record<string, unknown> = {}): void {
    this.#dropped += 1;
    if (this.#warned.has(cause)) return;
    this.#warned.add(cause);
    this.o.logger.warn({ ...details, dropped: this.#dropped }, message);
  }
}
