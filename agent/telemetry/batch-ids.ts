import { randomBytes } from 'node:crypto';

/**
 * Telemetry batch ids, unique per device for good: the hub stores each id once, so a repeat would
 * silently lose a batch. A random prefix per process (72 bits) and a counter: no state on disk to
 * lose or roll back, and no clock, which devices without a battery step at boot.
 */
export function batchIds(kind: string): () => string {
  const prefix = `${kind}.${randomBytes(9).toString('hex')}`;
  let n = 0;
  return () => `${prefix}.${++n}`;
}
