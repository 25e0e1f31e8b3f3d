/**
 * Retention: whole days of telemetry older than the limit are deleted, nothing newer. The date
 * math (`expiredDays`) is pure; `applyRetention` only lists and deletes. Days are UTC, like the
 * archive's directories. Safe while the archive is open: it only writes old days for late
 * batches, which recreate their day (and the next run removes it again).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DAY_MS, JOURNAL_ROOT, KIND_ROOTS, parseDay } from './layout.js';
import { listDir } from './list-dir.js';

export interface RetentionPolicy {
  /** Days kept, today (UTC) included: 1 keeps only today. */
  days: number;
  now: Date;
}

/** Midnight UTC of the oldest day kept. */
export function oldestKeptDay(policy: RetentionPolicy): number {
  if (!Number.isInteger(policy.days) || policy.days < 1) throw new RangeError(`retention days must be a whole number >= 1, not ${policy.days}`);
  const today = Math.floor(policy.now.getTime() / DAY_MS) * DAY_MS;
  return today - (policy.days - 1) * DAY_MS;
}

/** The names among `names` that are days (`YYYY-MM-DD`) before the oldest kept; anything else is kept. */
export function expiredDays(names: readonly string[], policy: RetentionPolicy): string[] {
  const oldest = oldestKeptDay(policy);
  return names.filter((name) => {
    const day = parseDay(name);
    return day !== undefined && day < oldest;
  });
}

/** Deletes the expired day directories of every kind, and their journals; returns their paths relative to `dir`, sorted. */
export async function applyRetention(dir: string, policy: RetentionPolicy): Promise<{ removed: string[] }> {
  const removed: string[] = [];
  for (const root of KIND_ROOTS) {
    for (const day of expiredDays(await listDir(join(dir, root)), policy)) {
      await rm(join(dir, root, day), { recursive: true, force: true });
      removed.push(`${root}/${day}`);
    }
  }
  const journals = (await listDir(join(dir, JOURNAL_ROOT))).filter((name) => name.endsWith('.jsonl')).map((name) => name.slice(0, -'.jsonl'.length));
  for (const day of expiredDays(journals, policy)) {
    await rm(join(dir, JOURNAL_ROOT, `${day}.jsonl`), { force: true });
    removed.push(`${JOURNAL_ROOT}/${day}.jsonl`);
  }
  return { removed: removed.sort() };
}
