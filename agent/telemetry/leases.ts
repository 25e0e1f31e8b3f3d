/**
 * The outbox's batches out for delivery, and which of them the quota dropped meanwhile. Dropping
 * such a batch frees its disk at once, but whether it was lost is only known when its publish
 * settles: acknowledged, it was delivered and is not a drop; failed, it is one. So each batch is
 * counted as dropped at most once, and never as both dropped and delivered.
 */
import type { Lane } from './outbox-file.js';

export class Leases {
  readonly #out = new Set<string>();
  /** Batches out for delivery that the quota dropped: id → the lane to count the drop in. */
  readonly #dropped = new Map<string, Lane>();

  take(id: string): void {
    this.#out.add(id);
  }

  isOut(id: string): boolean {
    return this.#out.has(id);
  }

  /** The quota dropped the batch. True when it is out: its count waits for how its publish ends. */
  drop(id: string, lane: Lane): boolean {
    if (!this.#out.has(id)) return false;
    this.#dropped.set(id, lane);
    return true;
  }

  /** Its publish was acknowledged: whatever the quota did meanwhile, it was delivered. */
  delivered(id: string): void {
    this.#out.delete(id);
    this.#dropped.delete(id);
  }

  /** Its publish failed: the lane to count a drop in when the quota dropped it meanwhile (it will not be sent again). */
  failed(id: string): Lane | undefined {
    this.#out.delete(id);
    const lane = this.#dropped.get(id);
    this.#dropped.delete(id);
    return lane;
  }
}
