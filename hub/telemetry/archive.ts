/**
 * The hub's telemetry archive: append-only daily JSONL files in the user's storage directory
 * (layout.ts), written in fsynced batches, each telemetry batch stored at most once even across a
 * hub crash (journal.ts), and read back as a stream.
 *
 * `append` resolves once the batch is durable, so the caller can acknowledge it to the device only
 * then: a crash before that loses nothing the device still holds, and the redelivery that follows
 * is stored once. Seen batch ids are kept for the last `dedupDays` days (of hub time) and rebuilt
 * from the journal on open, as runs of numbered ids (id-set.ts): a few numbers per agent process
 * and day rather than a string per batch. A redelivery later than that is stored again.
 */
import { mkdir, open, readdir, stat, truncate } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Clock } from '../../shared/clock.js';
import { fsyncDir } from '../../shared/durable-file.js';
import type { Logger } from '../../shared/logger.js';
import { TelemetryArchiveCodes, TelemetryArchiveError } from './errors.js';
import { encodeEntry, scanJournal, type JournalEntry } from './journal.js';
import { readJsonLines, type SkipReason } from './jsonl.js';
import { applyRetention } from './retention.js';
import { compactDir } from './compaction.js';
import { BatchIdSet } from './id-set.js';
import { DAY_MS, dayOf, isSegment, JOURNAL_ROOT, journalFile, KIND_ROOTS, parseDay } from './layout.js';
import { checkBatchId, placeRecord, type ArchiveRecord, type StoredRecord } from './records.js';
import { planRead, type ReadQuery } from './read-plan.js';
import { listDir } from './list-dir.js';

export interface TelemetryArchiveOptions {
  clock: Clock;
  logger: Logger;
  /** How long an appended batch may wait for its fsync; one fsync round serves every batch in it. */
  fsyncEveryMs?: number;
  /** Days of batch ids remembered to refuse redeliveries (today included). */
  dedupDays?: number;
}

export type AppendResult = 'stored' | 'duplicate';

export interface CompactionResult {
  /** Days with a file compacted. */
  days: number;
  files: number;
}

export interface ArchiveStats {
  /** Batches stored since open. */
  stored: number;
  /** Batches refused since open because their id was stored before. */
  duplicates: number;
  /** Lines skipped by reads since open: torn (a write cut short) or not JSON. */
  skippedLines: number;
}

interface PendingBatch {
  id: string;
  lines: { file: string; line: string }[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * 0 is group commit: a flush starts as soon as the loop is free, and whatever arrives while one is
 * writing goes into the next. Batches wait for their fsync, not for a timer (bench/telemetry-ingest).
 */
export const DEFAULT_FSYNC_EVERY_MS = 0;
/** Files appended and fsynced at once in a flush: one per device, so sequential fsyncs would cap ingest by fleet size. */
const FLUSH_CONCURRENCY = 16;
export const DEFAULT_DEDUP_DAYS = 7;

export class TelemetryArchive {
  readonly #dir: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #fsyncEveryMs: number;
  readonly #dedupDays: number;
  /** Batch ids by the (hub) day they were committed. */
  readonly #seen = new Map<string, BatchIdSet>();
  /** Batches buffered or being written, by id: a redelivery meanwhile waits for the first copy. */
  readonly #inFlight = new Map<string, Promise<void>>();
  /**
   * Committed size of each file this process wrote: reads stop there, so they never see the lines
   * of a flush that may still be rolled back.
   */
  readonly #committed = new Map<string, number>();
  #buffer: PendingBatch[] = [];
  /** Reads under way, who waits for there to be none, and a compaction under way (see `compact`). */
  #readers = 0;
  #idle: Array<() => void> = [];
  #compaction: Promise<unknown> | null = null;
  #timer: unknown = undefined;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  /** Set when a failed flush could not be undone: the files no longer match the journal. */
  #broken: unknown = undefined;
  readonly #stats: ArchiveStats = { stored: 0, duplicates: 0, skippedLines: 0 };

  private constructor(dir: string, opts: TelemetryArchiveOptions) {
    this.#dir = resolve(dir);
    this.#clock = opts.clock;
    this.#logger = opts.logger;
    this.#fsyncEveryMs = opts.fsyncEveryMs ?? DEFAULT_FSYNC_EVERY_MS;
    this.#dedupDays = opts.dedupDays ?? DEFAULT_DEDUP_DAYS;
    if (!(this.#fsyncEveryMs >= 0) || !Number.isInteger(this.#dedupDays) || this.#dedupDays < 1) {
      throw new RangeError(`fsyncEveryMs must be >= 0 and dedupDays a whole number >= 1 (got ${this.#fsyncEveryMs}, ${this.#dedupDays})`);
    }
  }

  /** Opens (creating) the archive in `dir`, finishing what a crash interrupted and reloading the seen ids. */
  static async open(dir: string, opts: TelemetryArchiveOptions): Promise<TelemetryArchive> {
    const archive = new TelemetryArchive(dir, opts);
    await archive.#recover();
    return archive;
  }

  /**
   * Stores `records` under `batchId`, resolving once they are durable; a batch id stored before is
   * not stored again and resolves `duplicate`. Rejects with RECORD_INVALID / NAME_INVALID (nothing
   * of the batch is stored) or with the write's error (nothing is stored, the id stays unseen, so a
   * redelivery can try again).
   */
  async append(batchId: string, records: readonly ArchiveRecord[]): Promise<AppendResult> {
    this.#checkOpen();
    checkBatchId(batchId);
    const first = this.#inFlight.get(batchId);
    if (first || this.#hasSeen(batchId)) {
      this.#stats.duplicates += 1;
      await first;
      return 'duplicate';
    }
    const lines = records.map((record) => placeRecord(record, batchId));
    const done = new Promise<void>((resolve, reject) => this.#buffer.push({ id: batchId, lines, resolve, reject }));
    this.#inFlight.set(batchId, done);
    // The copy in #inFlight is only awaited by duplicates; this one is the caller's.
    done.catch(() => {});
    this.#timer ??= this.#clock.setTimeout(() => {
      this.flush().catch((err: unknown) => this.#logger.error({ err }, 'telemetry archive: writing a batch failed; its devices will send it again'));
    }, this.#fsyncEveryMs);
    await done;
    return 'stored';
  }

  /** Writes and fsyncs everything appended so far. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const run = this.#chain.then(() => this.#flushOnce());
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Flushes, then refuses further appends. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
  }

  /**
   * Gzips the files of every day before `before`'s day (compaction.ts). Runs between writes, so no
   * append can land in a file being compacted; a late batch for a compacted day starts a new live
   * file there, and the next run compacts that one too.
   */
  compact(before: Date): Promise<CompactionResult> {
    return this.#betweenWrites(async () => {
      // Compaction renames files a read may not have opened yet: it waits for the reads under way,
      // and reads that start meanwhile wait for it, so none misses a file.
      const run = this.#noReaders().then(() => this.#compactOnce(dayOf(before.getTime())));
      this.#compaction = run;
      try {
        return await run;
      } finally {
        this.#compaction = null;
      }
    });
  }

  /**
   * Deletes the days older than `days` (today, in hub time, included; retention.ts). Runs between
   * writes, so a late batch for an expiring day is either stored and deleted with it or not yet
   * written; it never fails halfway for a directory removed under it.
   */
  expire(days: number): Promise<{ removed: string[] }> {
    return this.#betweenWrites(() => applyRetention(this.#dir, { days, now: new Date(this.#clock.now()) }));
  }

  stats(): ArchiveStats {
    return { ...this.#stats };
  }

  /**
   * Stored records of one kind with `since <= ts < until` (default: no end), day by day and file by
   * file, each file in the order it was written (not sorted by ts within a day). Streams: memory
   * does not grow with the range. Names in the query are checked like names in records.
   */
  read(query: ReadQuery): AsyncIterable<StoredRecord> {
    const plan = planRead(this.#dir, query);
    const onSkip = (file: string) => (reason: SkipReason) => {
      this.#stats.skippedLines += 1;
      this.#logger.warn({ file, reason }, 'telemetry archive: skipped a damaged line');
    };
    const committed = this.#committed;
    const enter = () => this.#enterRead();
    const leave = () => this.#leaveRead();
    return (async function* () {
      await enter();
      try {
        for await (const file of plan.files()) {
          for await (const value of readJsonLines(join(plan.dir, file), { length: committed.get(file), onSkip: onSkip(file) })) {
            const record = plan.accept(value);
            if (record) yield record;
          }
        }
      } finally {
        leave();
      }
    })();
  }

  async #enterRead(): Promise<void> {
    while (this.#compaction) await this.#compaction.catch(() => {});
    this.#readers += 1;
  }

  #leaveRead(): void {
    this.#readers -= 1;
    if (this.#readers === 0) for (const wake of this.#idle.splice(0)) wake();
  }

  async #noReaders(): Promise<void> {
    while (this.#readers > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #betweenWrites<T>(op: () => Promise<T>): Promise<T> {
    this.#checkOpen();
    const run = this.#chain.then(op);
    this.#chain = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  async #compactOnce(beforeDay: string): Promise<CompactionResult> {
    const result: CompactionResult = { days: 0, files: 0 };
    const days = new Set<string>();
    for (const kind of KIND_ROOTS) {
      for (const day of await listDir(this.#abs(kind))) {
        if (parseDay(day) === undefined || day >= beforeDay) continue;
        const dirs = kind === 'metrics' ? [`${kind}/${day}`] : (await listDir(this.#abs(`${kind}/${day}`))).filter(isSegment).map((s) => `${kind}/${day}/${s}`);
        let files = 0;
        for (const dir of dirs) {
          files += (await compactDir(this.#abs(dir))).compacted;
          // Their live files are gone: sizes this process knew do not apply to the next ones.
          for (const file of this.#committed.keys()) if (file.startsWith(`${dir}/`)) this.#committed.delete(file);
        }
        if (files > 0) days.add(day);
        result.files += files;
      }
    }
    result.days = days.size;
    if (result.files > 0) this.#logger.info({ ...result, before: beforeDay }, 'telemetry archive: compacted closed days');
    return result;
  }

  #checkOpen(): void {
    if (this.#closed) throw new TelemetryArchiveError(TelemetryArchiveCodes.ARCHIVE_FAILED, 'the telemetry archive is closed');
    if (this.#broken !== undefined) {
      throw new TelemetryArchiveError(TelemetryArchiveCodes.ARCHIVE_FAILED, 'the telemetry archive could not undo a failed write; restart the hub to repair it', { cause: this.#broken });
    }
  }

  #hasSeen(id: string): boolean {
    for (const ids of this.#seen.values()) if (ids.has(id)) return true;
    return false;
  }

  #inWindow(day: string, today: number): boolean {
    const ms = parseDay(day);
    return ms !== undefined && ms > today - this.#dedupDays * DAY_MS;
  }

  /** Drops the ids of days that fell out of the window (called as days go by). */
  #forgetOldDays(): void {
    const today = Math.floor(this.#clock.now() / DAY_MS) * DAY_MS;
    for (const day of this.#seen.keys()) if (!this.#inWindow(day, today)) this.#seen.delete(day);
  }

  #abs(file: string): string {
    return join(this.#dir, file);
  }

  async #recover(): Promise<void> {
    await mkdir(join(this.#dir, JOURNAL_ROOT), { recursive: true });
    const days = (await readdir(join(this.#dir, JOURNAL_ROOT)))
      .filter((name) => name.endsWith('.jsonl') && parseDay(name.slice(0, -'.jsonl'.length)) !== undefined)
      .map((name) => name.slice(0, -'.jsonl'.length))
      .sort();
    const today = Math.floor(this.#clock.now() / DAY_MS) * DAY_MS;
    const latest = days.at(-1);
    for (const day of days) {
      if (day !== latest && !this.#inWindow(day, today)) continue;
      const scan = await scanJournal(this.#abs(journalFile(day)));
      if (this.#inWindow(day, today)) {
        const ids = new BatchIdSet();
        for (const id of scan.ids) ids.add(id);
        this.#seen.set(day, ids);
      }
      // Only the last journal written can end in an unfinished flush: flushes run one at a time.
      if (day === latest) await this.#finishInterrupted(day, scan.completeBytes, scan.last);
    }
  }

  async #finishInterrupted(day: string, completeBytes: number, last: JournalEntry | undefined): Promise<void> {
    const journal = this.#abs(journalFile(day));
    if ((await stat(journal)).size > completeBytes) {
      // A torn journal line: cut it off, or the next entry would be glued to it.
      await truncate(journal, completeBytes);
      this.#logger.warn({ file: journal }, 'telemetry archive: cut a torn line off the journal');
    }
    if (!last || !('begin' in last)) return;
    const files = Object.entries(last.begin);
    for (const [file, size] of files) await this.#cutBack(this.#safePath(file), size);
    await this.#appendJournal(day, { abort: true });
    this.#logger.warn({ files: files.length }, 'telemetry archive: the hub stopped during a write; undid it (its devices will send those batches again)');
  }

  /** Journal paths are trusted no more than device names: a tampered journal must not truncate files elsewhere. */
  #safePath(file: string): string {
    const abs = resolve(this.#dir, file);
    if (!KIND_ROOTS.some((kind) => file.startsWith(`${kind}/`)) || !abs.startsWith(this.#dir + sep)) {
      throw new TelemetryArchiveError(TelemetryArchiveCodes.ARCHIVE_FAILED, `the telemetry journal names a file outside the archive: ${JSON.stringify(file)}`);
    }
    return abs;
  }

  async #cutBack(abs: string, size: number): Promise<void> {
    let handle;
    try {
      handle = await open(abs, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      if ((await handle.stat()).size > size) {
        await handle.truncate(size);
        await handle.sync();
      }
    } finally {
      await handle.close();
    }
  }

  async #appendJournal(day: string, entry: JournalEntry): Promise<void> {
    await this.#appendSynced(journalFile(day), encodeEntry(entry));
  }

  /** Appends and fsyncs; a new file's directory entries are fsynced too, or a power cut could lose the file. */
  async #appendSynced(file: string, text: string): Promise<void> {
    const abs = this.#abs(file);
    const created = await mkdir(dirname(abs), { recursive: true });
    const handle = await open(abs, 'a', 0o600);
    let isNew: boolean;
    try {
      isNew = (await handle.stat()).size === 0;
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (isNew) await fsyncDir(dirname(abs));
    if (created !== undefined) {
      for (let d = dirname(abs); d.length >= created.length; d = dirname(d)) await fsyncDir(dirname(d));
    }
  }

  async #sizeOf(file: string): Promise<number> {
    try {
      return (await stat(this.#abs(file))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }

  async #flushOnce(): Promise<void> {
    const batches = this.#buffer;
    this.#buffer = [];
    if (batches.length === 0) return;
    const day = dayOf(this.#clock.now());
    const byFile = new Map<string, string[]>();
    for (const batch of batches) {
      for (const { file, line } of batch.lines) {
        let lines = byFile.get(file);
        if (!lines) byFile.set(file, (lines = []));
        lines.push(line);
      }
    }
    const sizes: Record<string, number> = {};
    let begun = false;
    try {
      for (const file of byFile.keys()) sizes[file] = await this.#sizeOf(file);
      // Reads stop at the old size until the commit.
      for (const file of byFile.keys()) if (!this.#committed.has(file)) this.#committed.set(file, sizes[file]!);
      await this.#appendJournal(day, { begin: sizes });
      begun = true;
      const files = [...byFile];
      for (let i = 0; i < files.length; i += FLUSH_CONCURRENCY) {
        // Settled, not Promise.all: the undo below must not cut a file back while another write still runs.
        const results = await Promise.allSettled(files.slice(i, i + FLUSH_CONCURRENCY).map(([file, lines]) => this.#appendSynced(file, lines.join(''))));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
      await this.#appendJournal(day, { commit: batches.map((b) => b.id) });
    } catch (err) {
      if (begun) await this.#undo(day, sizes, err);
      for (const batch of batches) {
        this.#inFlight.delete(batch.id);
        batch.reject(err);
      }
      throw err;
    }
    for (const [file, lines] of byFile) this.#committed.set(file, sizes[file]! + lines.reduce((n, line) => n + Buffer.byteLength(line), 0));
    let ids = this.#seen.get(day);
    if (!ids) {
      this.#seen.set(day, (ids = new BatchIdSet()));
      this.#forgetOldDays();
    }
    for (const batch of batches) {
      ids.add(batch.id);
      this.#inFlight.delete(batch.id);
      this.#stats.stored += 1;
      batch.resolve();
    }
  }

  /** A flush failed after its `begin`: cut its files back and say so in the journal, or stop taking writes. */
  async #undo(day: string, sizes: Record<string, number>, cause: unknown): Promise<void> {
    try {
      for (const [file, size] of Object.entries(sizes)) await this.#cutBack(this.#abs(file), size);
      await this.#appendJournal(day, { abort: true });
    } catch (err) {
      this.#broken = err;
      this.#logger.error({ err, cause }, 'telemetry archive: cannot undo a failed write; refusing telemetry until the hub restarts');
    }
  }
}
