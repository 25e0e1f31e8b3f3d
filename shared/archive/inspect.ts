/**
 * The hub's view of an upload: validates the tar while it streams to disk, without writing it
 * anywhere, so a bad archive is refused before (or while) it is stored.
 */
import { TarReader } from './reader.js';
import type { ArchiveEntry, ArchiveLimits } from './types.js';

export class ArchiveInspector {
  private readonly reader: TarReader;

  constructor(limits: ArchiveLimits) {
    this.reader = new TarReader(limits);
  }

  /** Await each call: it resolves when the parser can take more, and rejects once anything failed. */
  write(chunk: Uint8Array): Promise<void> {
    return this.reader.write(chunk);
  }

  /** The entries sorted by path, or the first problem. Safe to call more than once. */
  finish(): Promise<ArchiveEntry[]> {
    return this.reader.finish();
  }

  /** Idempotent; pending and later calls reject with `err` (or with the earlier failure). */
  abort(err?: Error): void {
    this.reader.abort(err);
  }
}
