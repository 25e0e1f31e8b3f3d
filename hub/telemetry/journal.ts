/**
 * The archive's commit log, which makes "at most once" survive a crash at any instant without
 * making "at least once" fail. One flush writes, each fsynced before the next:
 *
 *   1. {"begin":{"metrics/2024-05-01/dev-1.jsonl":4096,…}}  every file it will append to, with its size
 *   2. the data lines, appended to those files
 *   3. {"commit":["batch-id",…]}                           the batch ids the flush stored
 *
 * A batch id counts as seen only once its commit line is durable, and a batch's data is kept only
 * if its commit line is. On open, a last entry that is a `begin` means a flush died halfway: its
 * files are cut back to the sizes it recorded (then `{"abort":true}` is written), so a
 * redelivered batch is stored whole, once, instead of half twice or not at all.
 */
import { readLines } from './jsonl.js';

export type JournalEntry = { begin: Record<string, number> } | { commit: string[] } | { abort: true };

export function encodeEntry(entry: JournalEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

function decodeEntry(text: string): JournalEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (Array.isArray(v.commit) && v.commit.every((id) => typeof id === 'string')) return { commit: v.commit as string[] };
  if (typeof v.begin === 'object' && v.begin !== null && Object.values(v.begin).every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) {
    return { begin: v.begin as Record<string, number> };
  }
  if (v.abort === true) return { abort: true };
  return undefined;
}

export interface JournalScan {
  /** The batch ids of every commit. */
  ids: string[];
  /** The last readable entry: a `begin` here is an unfinished flush. */
  last: JournalEntry | undefined;
  /** Bytes up to the end of the last complete line: anything after is a torn write to cut off. */
  completeBytes: number;
  /** Lines that were not entries (torn or damaged). */
  skipped: number;
}

export async function scanJournal(path: string): Promise<JournalScan> {
  const scan: JournalScan = { ids: [], last: undefined, completeBytes: 0, skipped: 0 };
  for await (const line of readLines(path)) {
    if (!line.complete) {
      scan.skipped += 1;
      break;
    }
    scan.completeBytes = line.end;
    if (line.text.trim() === '') continue;
    const entry = decodeEntry(line.text);
    if (!entry) {
      scan.skipped += 1;
      continue;
    }
    // A loop, not push(...ids): a commit can hold more ids than a call has room for arguments.
    if ('commit' in entry) for (const id of entry.commit) scan.ids.push(id);
    scan.last = entry;
  }
  return scan;
}
