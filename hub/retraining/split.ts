/**
 * The train/eval split: by a hash of each row's key, so a row stays on its side from one run to the
 * next (an eval row never leaks into a later run's training data while the fraction is unchanged).
 */
import { createHash } from 'node:crypto';

/** Where the row with this key falls in [0, 1): the same place in every run. */
export function splitPoint(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) / 2 ** 32;
}

/** Whether the row with this key (a request id) belongs to the eval split of `fraction` (0–1). */
export function inEvalSplit(key: string, fraction: number): boolean {
  return splitPoint(key) < fraction;
}

/** The key of a base dataset's row: datasets are immutable, so its place is stable. */
export function datasetRowKey(name: string, version: number, index: number): string {
  return `${name}:${version}#${index}`;
}
