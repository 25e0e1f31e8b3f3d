/**
 * The last valid desired state, kept on disk so an agent restarted without a hub still knows its
 * target. Generations only move forward: an older retained or replayed message never replaces a
 * newer target.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeMessage, type DesiredState } from '../../shared/protocol.js';

export class TargetCache {
  private current: DesiredState | null = null;
  private readonly file: string;
  /** Offers run one at a time: a session replay can deliver several desired states at once. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dataDir: string) {
    this.file = join(dataDir, 'desired.json');
  }

  async load(): Promise<DesiredState | null> {
    try {
      const decoded = decodeMessage('desired', await readFile(this.file));
      this.current = decoded.ok ? decoded.value : null;
    } catch {
      this.current = null;
    }
    return this.current;
  }

  get(): DesiredState | null {
    return this.current;
  }

  /** Resolves false (and keeps the old target) when `next` is not newer. */
  offer(next: DesiredState): Promise<boolean> {
    const run = this.queue.then(() => this.write(next));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(next: DesiredState): Promise<boolean> {
    if (this.current && next.generation <= this.current.generation) return false;
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(next), { mode: 0o600, flush: true });
    await rename(tmp, this.file);
    this.current = next;
    return true;
  }
}
