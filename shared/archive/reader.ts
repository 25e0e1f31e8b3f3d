/**
 * The streaming core under both ArchiveInspector and extractArchive: feeds bytes to tar-stream,
 * runs every header through EntryRules, hashes file content, and hands entries to an optional sink
 * (the extractor's writer). The first failure wins and tears everything down.
 */
import { createHash } from 'node:crypto';
import { extract, type Extract, type ExtractEvents, type Header } from 'tar-stream';
import { EdgemlError, ErrorCodes } from '../errors.js';
import { notATar } from './failures.js';
import { EntryRules } from './rules.js';
import type { ArchiveEntry, ArchiveLimits } from './types.js';

const BLOCK = 512;

type Source = ExtractEvents['entry'][1];

export interface FileSink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Receives entries in archive order; links are not streamed (they wait for the full entry set). */
export interface ArchiveSink {
  directory(entry: ArchiveEntry): Promise<void>;
  file(entry: ArchiveEntry): Promise<FileSink>;
}

export class TarReader {
  private readonly rules: EntryRules;
  private readonly tar: Extract;
  private failure: Error | null = null;
  private rejectFailed!: (err: Error) => void;
  /** Rejects with the first failure; raced against waits so none of them outlives it. */
  private readonly failed: Promise<never>;
  private drainWaiters: Array<() => void> = [];
  private handling: Promise<void> = Promise.resolve();
  private finishing: Promise<ArchiveEntry[]> | null = null;
  // For the end-of-archive check: tar-stream stops quietly when the bytes end between two entries.
  private bytesIn = 0;
  private nonZeroEnd = 0;
  private entriesEnd = 0;

  constructor(limits: ArchiveLimits, private readonly sink?: ArchiveSink) {
    this.rules = new EntryRules(limits);
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
    this.tar = extract();
    this.tar.on('entry', (header, stream, next) => {
      this.handling = this.handle(header, stream).then(
        () => {
          if (this.failure === null) next();
        },
        (err: unknown) => this.fail(err as Error),
      );
    });
    this.tar.on('drain', () => this.releaseWriters());
    this.tar.on('error', (err: Error) => this.fail(notATar(err)));
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.failure !== null) throw this.failure;
    if (this.finishing !== null) throw new EdgemlError(ErrorCodes.INTERNAL, 'archive write after finish()');
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.track(buf);
    const accepted = this.tar.write(buf);
    if (this.failure !== null) throw this.failure;
    if (accepted) return;
    await Promise.race([new Promise<void>((resolve) => this.drainWaiters.push(resolve)), this.failed]);
  }

  finish(): Promise<ArchiveEntry[]> {
    this.finishing ??= this.runFinish();
    return this.finishing;
  }

  abort(err?: Error): void {
    this.fail(err ?? new EdgemlError(ErrorCodes.ARCHIVE_INVALID, 'archive stream was aborted', { httpStatus: 400 }));
  }

  /** Resolves once no entry is being handled, so a failed extraction can clean up behind it. */
  settled(): Promise<void> {
    return this.handling.then(
      () => {},
      () => {},
    );
  }

  private async runFinish(): Promise<ArchiveEntry[]> {
    try {
      if (this.failure !== null) throw this.failure;
      const ended = new Promise<void>((resolve) => this.tar.once('finish', resolve));
      this.tar.end(null);
      await Promise.race([ended, this.failed]);
      await this.handling;
      if (this.failure !== null) throw this.failure;
      // Whatever follows the last entry must be zeros, and at least one block of them.
      if (this.bytesIn - this.entriesEnd < BLOCK || this.nonZeroEnd > this.entriesEnd) {
        throw notATar(new Error('missing end-of-archive marker'));
      }
      return this.rules.finish();
    } catch (err) {
      this.fail(err as Error);
      throw this.failure!;
    }
  }

  private async handle(header: Header, stream: Source): Promise<void> {
    // Tearing down the parser destroys the current entry stream with the same error, which we already have.
    stream.on('error', () => {});
    const size = header.size ?? 0;
    // tar-stream skips no data for directories, whatever their header says; mirror it.
    const dataEnd = (header as Header & { byteOffset?: number }).byteOffset ?? 0;
    const blocks = header.type === 'directory' ? 0 : Math.ceil(size / BLOCK);
    this.entriesEnd = Math.max(this.entriesEnd, dataEnd + blocks * BLOCK);

    const entry = this.rules.accept(header);
    if (entry === null || entry.type !== 'file') {
      if (entry?.type === 'directory') await this.sink?.directory(entry);
      stream.resume();
      return;
    }
    const hash = createHash('sha256');
    let received = 0;
    const out = await this.sink?.file(entry);
    try {
      for await (const data of stream) {
        const chunk = data as Buffer;
        hash.update(chunk);
        received += chunk.byteLength;
        await out?.write(chunk);
      }
    } finally {
      await out?.close();
    }
    if (received !== entry.size) throw notATar(new Error(`entry ${JSON.stringify(entry.path)} ended after ${received} of ${entry.size} bytes`));
    entry.digest = `sha256:${hash.digest('hex')}`;
  }

  private track(buf: Buffer): void {
    let last = buf.byteLength - 1;
    while (last >= 0 && buf[last] === 0) last--;
    if (last >= 0) this.nonZeroEnd = this.bytesIn + last + 1;
    this.bytesIn += buf.byteLength;
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.rejectFailed(err);
    this.tar.destroy(err);
    this.releaseWriters();
  }

  private releaseWriters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
