/**
 * lowdb adapter for a JSON file that survives a crash at any instant (shared/durable-file.ts).
 * lowdb's own JSONFile (steno) renames without fsync, which survives `kill -9` but not a power cut.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Adapter } from 'lowdb';
import { writeFileDurably } from '../../shared/durable-file.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

/** Temp files of writes that a crash interrupted; only safe while nothing else writes `path`. */
export async function removeStaleTemps(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`;
  for (const name of await readdir(dirname(path))) {
    if (name.startsWith(prefix) && name.endsWith('.tmp')) await rm(join(dirname(path), name), { force: true });
  }
}

export class DurableJsonFile<T> implements Adapter<T> {
  constructor(private readonly path: string) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      // Never start over an unreadable store: that would silently lose every record.
      throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${this.path} is not valid JSON (${(err as Error).message}); restore it from a backup or move it away`, {
        cause: err,
      });
    }
  }

  async write(data: T): Promise<void> {
    await writeFileDurably(this.path, JSON.stringify(data));
  }
}
