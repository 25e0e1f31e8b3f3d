/**
 * The autoscaler's resource guard: a replica is added only if its memory limit fits in the device's
 * available memory minus a margin kept free for the agent, Docker and the system. A replica without
 * a memory limit is not guarded: nothing says how much it will take.
 */

/** The memory limits of the replicas the agent has asked for, for sources that cannot see them. */
export interface Commitments {
  /** Every replica it runs or is starting, all services. */
  committedBytes: number;
  /** Those asked for and not ready yet: not using memory yet, but about to. */
  pendingBytes: number;
}

/** Memory the device has for new replicas, in bytes. */
export type AvailableMemory = (c: Commitments) => Promise<number>;

/**
 * What the host says is available (MemAvailable), less the replicas still starting: running ones
 * are in the host's figure already, starting ones not yet, and counting them as free would let
 * the next decision add replicas that do not fit.
 */
export function hostMemory(read: () => Promise<number>): AvailableMemory {
  return async ({ pendingBytes }) => (await read()) - pendingBytes;
}

/**
 * A device of `totalBytes` for replicas, instead of reading it (tests, capacity planning): what is
 * left after the limits of the replicas already running.
 */
export function assumedMemory(totalBytes: number): AvailableMemory {
  return async ({ committedBytes }) => totalBytes - committedBytes;
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
  commitments: Commitments;
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
    const availableBytes = await this.o.available(r.commitments);
    const room = Math.max(0, Math.floor((availableBytes - this.o.marginBytes) / r.memoryBytes));
    const to = Math.min(r.wanted, r.from + room);
    if (to === r.wanted) return { to, availableBytes };
    const capacity =
      `capacity: a replica of ${r.service} needs ${mib(r.memoryBytes)}; ${mib(availableBytes)} available, ` +
      `${mib(this.o.marginBytes)} kept free: ${to} of the ${r.wanted} replicas the load asks for fit`;
    return { to, capacity, availableBytes };
  }
}
