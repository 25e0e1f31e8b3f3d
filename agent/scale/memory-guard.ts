/**
 * The autoscaler's resource guard: a replica is added only if its memory limit fits in the device's
 * available memory minus a margin kept free for the agent, Docker and the system. A replica without
 * a memory limit is not guarded: nothing says how much it will take.
 */

/**
 * Memory the device has for new replicas, in bytes. `committedBytes` is the sum of the memory
 * limits of the replicas the agent runs (or is starting), for sources that cannot see them.
 */
export type AvailableMemory = (committedBytes: number) => Promise<number>;

/** What the host says is available (MemAvailable): running replicas are in that figure already. */
export function hostMemory(read: () => Promise<number>): AvailableMemory {
  return () => read();
}

/**
 * A device of `totalBytes` for replicas, instead of reading it (tests, capacity planning): what is
 * left after the limits of the replicas already running.
 */
export function assumedMemory(totalBytes: number): AvailableMemory {
  return async (committedBytes) => totalBytes - committedBytes;
}

export interface Fit {
  /** How far toward `wanted` the service may go. */
  to: number;
  /** Set when `to` < `wanted`: why, with the numbers (`capacity: …`). */
  capacity?: string;
  /** The figure the decision was made on; absent when no guard applied. */
  availableBytes?: number;
}

export interface FitRequest {
  service: string;
  memoryBytes: number | null;
  from: number;
  wanted: number;
  committedBytes: number;
}

const MIB = 1024 * 1024;
const mib = (bytes: number) => `${Math.round(Math.max(0, bytes) / MIB)} MiB`;

export class MemoryGuard {
  constructor(private readonly o: { available: AvailableMemory; marginBytes: number }) {}

  get marginBytes(): number {
    return this.o.marginBytes;
  }

  /** Rejects when the available memory cannot be read: the caller holds, since nothing proves a replica fits. */
  async fit(r: FitRequest): Promise<Fit> {
    if (r.memoryBytes === null || r.wanted <= r.from) return { to: r.wanted };
    const availableBytes = await this.o.available(r.committedBytes);
    const room = Math.max(0, Math.floor((availableBytes - this.o.marginBytes) / r.memoryBytes));
    const to = Math.min(r.wanted, r.from + room);
    if (to === r.wanted) return { to, availableBytes };
    const capacity =
      `capacity: a replica of ${r.service} needs ${mib(r.memoryBytes)}; ${mib(availableBytes)} available, ` +
      `${mib(this.o.marginBytes)} kept free: ${to} of the ${r.wanted} replicas the load asks for fit`;
    return { to, capacity, availableBytes };
  }
}
