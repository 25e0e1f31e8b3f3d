/**
 * One hub per data directory. A second hub over the same directory would clear the first one's
 * upload temp files, sweep blobs against a stale view of the store, and overwrite `hub.json` with
 * its own copy, dropping acknowledged writes. The lock file holds the owner's pid; a lock whose
 * process is gone (kill -9, power loss) is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

export const LOCK_FILE = 'hub.lock';

function alive(pid: number): boolean {
  // Our own pid in the file is a previous life of this container's PID 1, not a live owner.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function lockDataDir(dataDir: string): Promise<{ release(): Promise<void> }> {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return { release: () => rm(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && alive(owner)) {
      throw new EdgemlError(ErrorCodes.HUB_DATA_LOCKED, `another hub (pid ${owner}) is using the data directory ${dataDir}; stop it first, or give this one its own --data`);
    }
    await rm(path, { force: true });
  }
  throw new EdgemlError(ErrorCodes.HUB_DATA_LOCKED, `cannot lock the data directory ${dataDir}: another hub is starting over it`);
}
