/**
 * The agent's store-and-forward queue of telemetry batches (issue 7 part 3): what was appended
 * survives a kill or a power cut until the hub's broker has acknowledged it, and the queue never
 * outgrows its quotas while the device is cut off.
 *
 * One file per batch (DIR/metrics/, DIR/capture/, DIR/feedback/, DIR/logs/) rather than an append-only log with an ack log:
 * - acks and drops are both "forget one batch", which here is one unlink. A log needs an ack record
 *   and a compaction, and an interrupted compaction is where such queues lose or resurrect data.
 *   Acks may also arrive out of order (several QoS 1 publishes in flight), which costs nothing here.
 * - a crash can only leave a temp file (never renamed, removed at open) or a whole batch file: the
 *   file is written aside, fsynced and renamed, and the directory fsynced, before `append` resolves.
 * - the cost is two fsyncs per append and per ack. Telemetry comes in batches per interval (one
 *   metrics batch per 10 s by default), so that is a few fsyncs a minute, not per request.
 * Names are a per-lane sequence (recovered at open), not a timestamp: devices without a battery
 * clock step their time at NTP sync, and the order of the queue must not follow.
 *
 * Drops are counted exactly once across crashes: the counters, with the highest sequence dropped,
 * are written durably before the files are removed, so a file a crash left behind at or below that
 * mark is removed at open without being counted again. Corrupt entries are removed and counted too.
 * A batch the quota drops while it is out for delivery (handed out by `next`) is counted only if
 * its publish fails (`release`), never if it is acknowledged (`ack`): delivered is not dropped. A
 * crash before either leaves it uncounted, so no batch is ever counted twice.
 *
 * Each lane has its own byte quota (file bytes: payload plus a small header), so captures can never
 * push metrics out, and a count bound, because every small file also costs a filesystem block and
 * an inode. Room for a new batch is made before it is written, so the disk never holds more than
 * the quota. The feedback lane is the exception: its batches are labels a client was told were
 * accepted, so it never drops one; when it is full, `append` refuses (LaneFullError) and the
 * gateway refuses new labels until the hub has taken some. Not safe for two processes on one
 * directory: the agent's data directory is its own.
 */
import { mkdir, open as openFile, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeFileDurably } from '../../shared/durable-file.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { Leases } from './leases.js';
import { decodeBatch, decodeHeader, encodeBatch, HEADER_BYTES, LANES, MAX_ID_BYTES, type Lane } from './outbox-file.js';

export { LANES, MAX_ID_BYTES, type Lane };

export interface Batch {
  /** Unique, made by the caller; the hub stores each id at most once. */
  id: string;
  lane: Lane;
  /** Opaque payload. */
  bytes: Buffer;
}

export type PerLane<T> = Record<Lane, T>;

/** Lanes whose oldest batches make room for new ones; the feedback lane refuses instead. */
export type DroppingLane = Exclude<Lane, 'feedback'>;
const keeps = (lane: Lane): boolean => lane === 'feedback';

/**
 * Metrics first (the hub's view of the device); labels, captures and shipped logs then take turns:
 * a label joins its captured request only if the capture arrives too, so steady labels must not
 * starve captures (which the capture quota would then drop), nor either of them the logs.
 */
type TurnLane = Exclude<Lane, 'metrics'>;
const TURN_LANES: readonly TurnLane[] = ['feedback', 'capture', 'logs'];

/** The feedback lane's quota when none is given (agent config `feedbackQuota`). */
export const DEFAULT_FEEDBACK_QUOTA_BYTES = 16 * 1024 * 1024;
/** The shipped logs lane's quota when none is given (agent config `logQueue`). */
export const DEFAULT_LOG_QUOTA_BYTES = 8 * 1024 * 1024;

export interface OutboxOptions {
  /** Bytes on disk per lane (payload plus a header of 16 bytes and the id); feedback defaults to DEFAULT_FEEDBACK_QUOTA_BYTES, logs to DEFAULT_LOG_QUOTA_BYTES. */
  limits: Record<Exclude<DroppingLane, 'logs'>, number> & { feedback?: number; logs?: number };
  logger: Logger;
  /** Largest payload `append` takes; default 1 MiB. Each lane's limit must hold at least one. */
  maxBatchBytes?: number;
  /** Most batches waiting per lane; default 100,000. Beyond it the oldest are dropped, as for bytes. */
  maxBatches?: number;
}

export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;
export const DEFAULT_MAX_BATCHES = 100_000;

/** The feedback lane is at its quota: nothing was written; the caller refuses what it would have held. */
export class LaneFullError extends EdgemlError {
  constructor(
    readonly lane: Lane,
    readonly limit: number,
  ) {
    super(ErrorCodes.AGENT_TELEMETRY_LANE_FULL, `telemetry outbox: the ${lane} lane is full (${limit} bytes waiting for the hub)`, { retryable: true });
    this.name = 'LaneFullError';
  }
}

/** A payload over `maxBatchBytes`: the caller should split it (or truncate captures) before appending. */
export class BatchTooLargeError extends EdgemlError {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(ErrorCodes.AGENT_TELEMETRY_BATCH_TOO_LARGE, `telemetry batch of ${bytes} bytes is over the outbox limit maxBatchBytes=${limit}`);
    this.name = 'BatchTooLargeError';
  }
}

interface Entry {
  id: string;
  seq: number;
  /** File bytes, as counted against the quota. */
  size: number;
}

interface Counters {
  /** The feedback lane's stays 0: it refuses rather than drops. */
  dropped: PerLane<number>;
  corrupt: PerLane<number>;
  /** The highest sequence ever dropped per lane: a file at or below it was counted already. */
  droppedThrough: PerLane<number>;
}

const COUNTERS_FILE = 'counters.json';
const SEQ_DIGITS = 16;
const BATCH_NAME = /^(\d{16})\.batch$/;
/** What `writeFileDurably` leaves behind when it dies before its rename. */
const isTemp = (name: string) => name.startsWith('.') && name.endsWith('.tmp');
/** Header reads at open run this many at a time: parallel enough for flash, few file handles. */
const OPEN_CONCURRENCY = 16;

const perLane = <T>(make: () => T): PerLane<T> => ({ metrics: make(), capture: make(), feedback: make(), logs: make() });
const fileName = (seq: number) => `${String(seq).padStart(SEQ_DIGITS, '0')}.batch`;

export class Outbox {
  /** Per lane, oldest first (a Map keeps insertion order, and batches are inserted by sequence). */
  readonly #lanes: PerLane<Map<string, Entry>>;
  readonly #bytes: PerLane<number>;
  readonly #lastSeq: PerLane<number>;
  readonly #counters: Counters;
  readonly #leases = new Leases();
  /** Changes run one at a time: each one reasons about the whole queue. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** One warning per lane per run when it starts dropping; the counts carry the rest. */
  readonly #warnedDrop = perLane(() => false);
  /** Of the lanes taking turns, the one `next` handed a batch from last: the other goes first next time. */
  #lastTurn: TurnLane = 'capture';

  private constructor(
    private readonly dir: string,
    private readonly opts: Options,
    lanes: PerLane<Map<string, Entry>>,
    counters: Counters,
    lastSeq: PerLane<number>,
  ) {
    this.#lanes = lanes;
    this.#counters = counters;
    this.#lastSeq = lastSeq;
    this.#bytes = perLane(() => 0);
    for (const lane of LANES) for (const e of lanes[lane].values()) this.#bytes[lane] += e.size;
  }

  static async open(dir: string, options: OutboxOptions): Promise<Outbox> {
    const opts: Options = {
      ...options,
      limits: { ...options.limits, feedback: options.limits.feedback ?? DEFAULT_FEEDBACK_QUOTA_BYTES, logs: options.limits.logs ?? DEFAULT_LOG_QUOTA_BYTES },
      maxBatchBytes: options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
      maxBatches: options.maxBatches ?? DEFAULT_MAX_BATCHES,
    };
    validate(opts);
    const { logger } = opts;
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) if (isTemp(name)) await rm(join(dir, name), { force: true });
    const counters = await readCounters(dir, logger);
    const lanes = perLane(() => new Map<string, Entry>());
    const lastSeq = perLane(() => 0);
    let corruptFound = false;
    for (const lane of LANES) {
      const scanned = await scanLane(join(dir, lane), lane, counters.droppedThrough[lane], logger);
      lastSeq[lane] = Math.max(scanned.lastSeq, counters.droppedThrough[lane]);
      counters.corrupt[lane] += scanned.corrupt;
      corruptFound ||= scanned.corrupt > 0;
      for (const e of scanned.entries) {
        // An id twice is a corrupt copy (or a caller bug): the older one is the one to send.
        if (LANES.some((l) => lanes[l].has(e.id))) {
          logger.warn({ lane, id: e.id, file: fileName(e.seq) }, 'telemetry outbox: a second batch with the same id; removed');
          await rm(join(dir, lane, fileName(e.seq)), { force: true });
          counters.corrupt[lane] += 1;
          corruptFound = true;
        } else lanes[lane].set(e.id, e);
      }
    }
    const outbox = new Outbox(dir, opts, lanes, counters, lastSeq);
    if (corruptFound) await outbox.saveCounters();
    // Limits may have been lowered since the last run.
    for (const lane of LANES) await outbox.makeRoom(lane, 0);
    return outbox;
  }

  /** Resolves once the batch is on disk (file and directory fsynced). */
  append(batch: Batch): Promise<void> {
    const { id, lane, bytes } = batch;
    if (!LANES.includes(lane)) return Promise.reject(new EdgemlError(ErrorCodes.INTERNAL, `telemetry outbox: unknown lane ${String(lane)}`));
    const idBytes = typeof id === 'string' ? Buffer.byteLength(id, 'utf8') : 0;
    if (idBytes === 0 || idBytes > MAX_ID_BYTES) {
      return Promise.reject(new EdgemlError(ErrorCodes.INTERNAL, `telemetry outbox: a batch id must be 1 to ${MAX_ID_BYTES} bytes`, { details: { idBytes } }));
    }
    if (bytes.length > this.opts.maxBatchBytes) return Promise.reject(new BatchTooLargeError(bytes.length, this.opts.maxBatchBytes));
    return this.serial(async () => {
      if (this.has(id)) throw new EdgemlError(ErrorCodes.INTERNAL, `telemetry outbox: batch ${id} is already waiting`, { details: { id } });
      const file = encodeBatch(lane, id, bytes);
      await this.makeRoom(lane, file.length);
      const seq = ++this.#lastSeq[lane];
      try {
        await writeFileDurably(join(this.dir, lane, fileName(seq)), file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') {
          throw new EdgemlError(ErrorCodes.AGENT_DISK_FULL, 'telemetry outbox: the disk is full', { retryable: true, cause: err });
        }
        throw err;
      }
      this.#lanes[lane].set(id, { id, seq, size: file.length });
      this.#bytes[lane] += file.length;
    });
  }

  /**
   * The oldest waiting batch not already out for delivery: metrics first, then feedback, capture and
   * logs in turn; null when none.
   * It is out until its publish settles: `ack` removes it, `release` offers it again, so a caller can
   * keep several publishes going. A batch that fails its checksum is removed, counted as corrupt,
   * and the next one is returned.
   */
  next(): Promise<Batch | null> {
    return this.serial(async () => {
      // The lane after the one served last goes first.
      const after = TURN_LANES.indexOf(this.#lastTurn) + 1;
      const turns = [...TURN_LANES.slice(after), ...TURN_LANES.slice(0, after)];
      for (const lane of ['metrics', ...turns] as const) {
        for (const e of [...this.#lanes[lane].values()]) {
          if (this.#leases.isOut(e.id)) continue;
          const batch = await this.read(lane, e);
          if (!batch) continue;
          this.#leases.take(batch.id);
          if (lane !== 'metrics') this.#lastTurn = lane;
          return batch;
        }
      }
      return null;
    });
  }

  /** Delivered: removes the batch for good; resolves false when it was not waiting (acked twice, or dropped meanwhile). */
  ack(id: string): Promise<boolean> {
    return this.serial(async () => {
      this.#leases.delivered(id);
      const lane = LANES.find((l) => this.#lanes[l].has(id));
      if (!lane) return false;
      const e = this.#lanes[lane].get(id)!;
      await rm(join(this.dir, lane, fileName(e.seq)), { force: true });
      this.forget(lane, e);
      // Without it a crash could bring the batch back: harmless (the hub dedupes) but wasteful.
      await fsyncDir(join(this.dir, lane));
      return true;
    });
  }

  /** Its publish failed: the batch is offered again, or counted as dropped if the quota dropped it meanwhile. */
  release(id: string): Promise<void> {
    return this.serial(async () => {
      const lane = this.#leases.failed(id);
      if (lane === undefined) return;
      this.#counters.dropped[lane] += 1;
      await this.saveCounters();
    });
  }

  /** `logs` is optional for the fakes written before that lane; this one always has it. */
  size(): Omit<PerLane<{ count: number; bytes: number }>, 'logs'> & { logs?: { count: number; bytes: number } } {
    return { metrics: this.laneSize('metrics'), capture: this.laneSize('capture'), feedback: this.laneSize('feedback'), logs: this.laneSize('logs') };
  }

  /**
   * Batches dropped to stay within the quotas, since the outbox was first created (survives
   * restarts); the feedback lane never drops; logs only once some were (hubs before it refuse the key).
   */
  dropped(): Record<Exclude<DroppingLane, 'logs'>, number> & { logs?: number } {
    const { metrics, capture, logs } = this.#counters.dropped;
    return { metrics, capture, ...(logs > 0 ? { logs } : {}) };
  }

  /** Batches found corrupt and removed, since the outbox was first created (survives restarts); feedback only once one was. */
  corrupt(): Record<Exclude<DroppingLane, 'logs'>, number> & { feedback?: number; logs?: number } {
    const { metrics, capture, feedback, logs } = this.#counters.corrupt;
    return { metrics, capture, ...(feedback > 0 ? { feedback } : {}), ...(logs > 0 ? { logs } : {}) };
  }

  /** Waits for the operations already asked for; later calls are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
  }

  private has(id: string): boolean {
    return LANES.some((l) => this.#lanes[l].has(id));
  }

  private laneSize(lane: Lane) {
    return { count: this.#lanes[lane].size, bytes: this.#bytes[lane] };
  }

  private forget(lane: Lane, e: Entry): void {
    this.#lanes[lane].delete(e.id);
    this.#bytes[lane] -= e.size;
  }

  /**
   * Drops the oldest batches of the lane until `incoming` more bytes (and one more batch, if any)
   * fit; in the feedback lane, throws LaneFullError instead (and at open, over a lowered quota, keeps all).
   */
  private async makeRoom(lane: Lane, incoming: number): Promise<void> {
    const entries = this.#lanes[lane];
    const limit = this.opts.limits[lane];
    const maxCount = incoming > 0 ? this.opts.maxBatches - 1 : this.opts.maxBatches;
    if (keeps(lane)) {
      if (incoming > 0 && (this.#bytes[lane] + incoming > limit || entries.size > maxCount)) throw new LaneFullError(lane, limit);
      return;
    }
    const victims: Entry[] = [];
    let bytes = this.#bytes[lane];
    let count = entries.size;
    for (const e of entries.values()) {
      if (bytes + incoming <= limit && count <= maxCount) break;
      victims.push(e);
      bytes -= e.size;
      count -= 1;
    }
    if (victims.length === 0) return;
    if (!this.#warnedDrop[lane]) {
      this.#warnedDrop[lane] = true;
      this.opts.logger.warn({ lane, limitBytes: limit, maxBatches: this.opts.maxBatches }, 'telemetry outbox is full: dropping the oldest batches (counted)');
    }
    // One out for delivery is counted when its publish fails (release), not now: it may yet arrive.
    this.#counters.dropped[lane] += victims.filter((e) => !this.#leases.drop(e.id, lane)).length;
    this.#counters.droppedThrough[lane] = Math.max(this.#counters.droppedThrough[lane], victims[victims.length - 1]!.seq);
    // Counted before removed: a crash in between leaves files the next open removes without counting.
    await this.saveCounters();
    for (const e of victims) this.forget(lane, e);
    await Promise.all(victims.map((e) => rm(join(this.dir, lane, fileName(e.seq)), { force: true })));
  }

  private async read(lane: Lane, e: Entry): Promise<Batch | null> {
    const path = join(this.dir, lane, fileName(e.seq));
    let reason: string;
    try {
      const decoded = decodeBatch(await readFile(path));
      if (decoded.ok && decoded.value.id === e.id && decoded.value.lane === lane) return { id: e.id, lane, bytes: decoded.value.bytes };
      reason = decoded.ok ? 'not the batch its header named at open' : decoded.reason;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      reason = 'file vanished';
    }
    this.opts.logger.warn({ lane, id: e.id, file: fileName(e.seq), reason }, 'telemetry outbox: corrupt batch removed');
    this.forget(lane, e);
    this.#counters.corrupt[lane] += 1;
    await rm(path, { force: true });
    await this.saveCounters();
    return null;
  }

  private saveCounters(): Promise<void> {
    return writeFileDurably(join(this.dir, COUNTERS_FILE), JSON.stringify({ v: 1, ...this.#counters }));
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new EdgemlError(ErrorCodes.INTERNAL, 'telemetry outbox is closed'));
    const run = this.#queue.then(op);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

type Options = { limits: PerLane<number>; maxBatchBytes: number; maxBatches: number; logger: Logger };

function validate(opts: Options): void {
  const positiveInt = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
  const fail = (message: string) => {
    throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `telemetry outbox: ${message}`, { details: { limits: opts.limits, maxBatchBytes: opts.maxBatchBytes, maxBatches: opts.maxBatches } });
  };
  if (!positiveInt(opts.maxBatchBytes)) fail('maxBatchBytes must be a positive integer');
  if (!positiveInt(opts.maxBatches)) fail('maxBatches must be a positive integer');
  const largestFile = HEADER_BYTES + MAX_ID_BYTES + opts.maxBatchBytes;
  for (const lane of LANES) {
    if (!positiveInt(opts.limits[lane])) fail(`limits.${lane} must be a positive integer (bytes)`);
    // Otherwise a full-size batch would push out everything, itself included.
    if (opts.limits[lane] < largestFile) fail(`limits.${lane} (${opts.limits[lane]} bytes) must hold one batch of maxBatchBytes (${largestFile} bytes with its header)`);
  }
}

async function readCounters(dir: string, logger: Logger): Promise<Counters> {
  const counters: Counters = { dropped: perLane(() => 0), corrupt: perLane(() => 0), droppedThrough: perLane(() => 0) };
  let text: string;
  try {
    text = await readFile(join(dir, COUNTERS_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return counters;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<Record<keyof Counters, Partial<PerLane<unknown>>>>;
    for (const key of ['dropped', 'corrupt', 'droppedThrough'] as const) {
      for (const lane of LANES) {
        const n = parsed[key]?.[lane];
        if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) counters[key][lane] = n;
      }
    }
  } catch (err) {
    // The batches matter more than the counts: start the counts again rather than refuse to run.
    logger.warn({ err: (err as Error).message }, 'telemetry outbox: unreadable drop counters, counting from zero');
  }
  return counters;
}

/**
 * The lane's batches, oldest first, from their headers. Removes temp files (a crash before a rename),
 * files already counted as dropped, and corrupt files (counted). Leaves files it does not know alone.
 */
async function scanLane(laneDir: string, lane: Lane, droppedThrough: number, logger: Logger): Promise<{ entries: Entry[]; lastSeq: number; corrupt: number }> {
  await mkdir(laneDir, { recursive: true });
  const seqs: number[] = [];
  let removed = false;
  for (const name of await readdir(laneDir)) {
    const match = BATCH_NAME.exec(name);
    const seq = match ? Number(match[1]) : NaN;
    if (isTemp(name)) {
      await rm(join(laneDir, name), { force: true });
      removed = true;
    } else if (!Number.isSafeInteger(seq)) {
      logger.warn({ lane, file: name }, 'telemetry outbox: unknown file left alone');
    } else if (seq <= droppedThrough) {
      await rm(join(laneDir, name), { force: true });
      removed = true;
    } else seqs.push(seq);
  }
  seqs.sort((a, b) => a - b);
  const results: Array<Entry | string> = [];
  for (let i = 0; i < seqs.length; i += OPEN_CONCURRENCY) {
    results.push(...(await Promise.all(seqs.slice(i, i + OPEN_CONCURRENCY).map((seq) => readEntry(laneDir, lane, seq)))));
  }
  const entries: Entry[] = [];
  let corrupt = 0;
  for (const [i, r] of results.entries()) {
    const seq = seqs[i]!;
    if (typeof r !== 'string') {
      entries.push(r);
      continue;
    }
    logger.warn({ lane, file: fileName(seq), reason: r }, 'telemetry outbox: corrupt batch removed');
    await rm(join(laneDir, fileName(seq)), { force: true });
    removed = true;
    corrupt += 1;
  }
  if (removed) await fsyncDir(laneDir);
  return { entries, lastSeq: seqs.at(-1) ?? 0, corrupt };
}

/** The entry, or why the file is not a batch of this lane. */
async function readEntry(laneDir: string, lane: Lane, seq: number): Promise<Entry | string> {
  const handle = await openFile(join(laneDir, fileName(seq)), 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(size, HEADER_BYTES + MAX_ID_BYTES));
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const decoded = decodeHeader(head.subarray(0, bytesRead), size);
    if (!decoded.ok) return decoded.reason;
    if (decoded.value.lane !== lane) return `a ${decoded.value.lane} batch in the ${lane} directory`;
    return { id: decoded.value.id, seq, size };
  } finally {
    await handle.close();
  }
}
