/**
 * The last valid desired state, kept on disk so an agent restarted without a hub still knows its
 * target. Within one hub epoch generations only move forward: an older retained or replayed message
 * never replaces a newer target. A state from another epoch comes from a hub that has restarted (a
 * hub restored from a backup counts lower than devices saw), so it replaces the target whatever its
 * generation.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../shared/durable-file.js';
import type { Logger } from '../../shared/logger.js';
import { decodeMessage, type DesiredState } from '../../shared/protocol.js';

/**
 * `newer`: a higher generation in the same epoch (or the first target); `new-epoch`: another hub
 * epoch, taken even with a lower generation; `stale`: not newer in the same epoch, refused.
 */
export type TargetOffer = { accepted: true; reason: 'newer' | 'new-epoch' } | { accepted: false; reason: 'stale' };

export class TargetCache {
  private current: DesiredState | null = null;
  private readonly file: string;
  /** Offers run one at a time: a session replay can deliver several desired states at once. */
  private queue: Promise<unknown> = Promise.resolve();

  /** `logger` hears of every change of epoch (a hub restart), which is rare enough to be worth a line. */
  constructor(
    dataDir: string,
    private readonly logger?: Logger,
  ) {
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

  /** Resolves false (and keeps the old target) when `next` is stale. */
  async offer(next: DesiredState): Promise<boolean> {
    return (await this.consider(next)).accepted;
  }

  /** Like `offer`, and says why `next` was taken or refused. */
  consider(next: DesiredState): Promise<TargetOffer> {
    const run = this.queue.then(() => this.write(next));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(next: DesiredState): Promise<TargetOffer> {
    const previous = this.current;
    // A missing epoch (from a hub, or a cached file, older than epochs) is an epoch of its own.
    const otherEpoch = previous !== null && previous.epoch !== next.epoch ? previous : null;
    if (previous && !otherEpoch && next.generation <= previous.generation) return { accepted: false, reason: 'stale' };
    await writeFileDurably(this.file, JSON.stringify(next));
    this.current = next;
    if (!otherEpoch) return { accepted: true, reason: 'newer' };
    this.logger?.info(
      { epoch: next.epoch ?? null, generation: next.generation, previousEpoch: otherEpoch.epoch ?? null, previousGeneration: otherEpoch.generation },
      'desired state from a new hub epoch (the hub restarted): taken whatever its generation',
    );
    return { accepted: true, reason: 'new-epoch' };
  }
}
