import { readdir } from 'node:fs/promises';

/** A directory's names, sorted; a directory that does not exist (no telemetry yet) is empty. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
