/**
 * Labels on their way into the outbox's feedback lane. Unlike captures, a label is answered only
 * once it is on disk (202 means it will reach the hub), so each `add` waits for its batch's append.
 * Labels that arrive while an append runs go together in the next one (a group commit): one fsync
 * pair per batch, not per label, however many clients send at once.
 */
import type { Logger } from '../../shared/logger.js';
import { encodeMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, type FeedbackBatch, type FeedbackItem } from '../../shared/protocol.js';
import type { Batch } from '../telemetry/outbox.js';

export interface FeedbackQueueOptions {
  /** Into the outbox's feedback lane (and wake the sender); rejects with LaneFullError when the lane is full. */
  append: (batch: Batch) => Promise<void>;
  /** Unique per device for good (`batchIds('f')`). */
  nextId: () => string;
  logger: Logger;
}

/** The protocol's bound on items per feedback batch. */
const MAX_ITEMS = 1000;
/** More than `{"v":1,"kind":"feedback","id":"…","items":[]}` takes with the longest id. */
const ENVELOPE_BYTES = 256;

interface Waiting {
  item: FeedbackItem;
  bytes: number;
  done: (err?: unknown) => void;
}

export class FeedbackQueue {
  #waiting: Waiting[] = [];
  #running = false;

  constructor(private readonly o: FeedbackQueueOptions) {}

  /** Resolves once the item is durable in the outbox; rejects with the append's error (nothing of it was kept). */
  add(item: FeedbackItem): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, bytes: Buffer.byteLength(JSON.stringify(item)) + 1, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (!this.#running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.#running = true;
    while (this.#waiting.length > 0) {
      const group = this.take();
      const batch: FeedbackBatch = { v: PROTOCOL_VERSION, kind: 'feedback', id: this.o.nextId(), items: group.map((w) => w.item) };
      try {
        await this.o.append({ id: batch.id, lane: 'feedback', bytes: encodeMessage('telemetry', batch) });
        for (const w of group) w.done();
      } catch (err) {
        this.o.logger.warn({ id: batch.id, items: group.length, err: (err as Error).message }, 'labels refused: the feedback batch could not be queued');
        for (const w of group) w.done(err);
      }
    }
    this.#running = false;
  }

  /** The oldest waiting items that fit one message (at least one: the gateway bounds an item well below a message). */
  private take(): Waiting[] {
    let bytes = ENVELOPE_BYTES;
    let n = 0;
    while (n < this.#waiting.length && n < MAX_ITEMS && (n === 0 || bytes + this.#waiting[n]!.bytes <= MAX_MESSAGE_BYTES)) bytes += this.#waiting[n++]!.bytes;
    return this.#waiting.splice(0, n);
  }
}
