/**
 * Which files a query must open, and which of their records it wants. The day directories are
 * listed rather than counted out from `since`, so a query from long ago does not try thousands of
 * empty days; files are opened in day, then name order (compacted generations of a file before its
 * live part: compaction.ts).
 */
import { join } from 'node:path';
import { TelemetryArchiveCodes, TelemetryArchiveError } from './errors.js';
import { readableFiles } from './compaction.js';
import { checkSegment, dayOf, isSegment, KIND_ROOTS, parseDay, serviceDir, type RecordKind } from './layout.js';
import { asStoredRecord, type StoredRecord } from './records.js';
import { listDir } from './list-dir.js';

export interface ReadQuery {
  kind: RecordKind;
  device?: string | undefined;
  /** Captures and feedback only: one service's files instead of every service's. */
  service?: string | undefined;
  /** Inclusive. */
  since: Date;
  /** Exclusive; no end when absent. */
  until?: Date | undefined;
}

export interface ReadPlan {
  dir: string;
  /** Paths relative to `dir`. */
  files(): AsyncIterable<string>;
  accept(value: unknown): StoredRecord | undefined;
}

function time(what: string, date: Date | undefined): number | undefined {
  if (date === undefined) return undefined;
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new TelemetryArchiveError(TelemetryArchiveCodes.RECORD_INVALID, `query ${what} must be a valid Date`);
  }
  return date.getTime();
}

/** Checks the query at once (names like record names, dates), so a bad query fails before any reading. */
export function planRead(dir: string, query: ReadQuery): ReadPlan {
  if (!(KIND_ROOTS as readonly string[]).includes(query.kind)) {
    throw new TelemetryArchiveError(TelemetryArchiveCodes.RECORD_INVALID, `query kind must be one of ${KIND_ROOTS.join(', ')}, not ${JSON.stringify(query.kind)}`);
  }
  const { kind } = query;
  const device = query.device === undefined ? undefined : checkSegment('device id', query.device);
  const service = query.service === undefined ? undefined : checkSegment('service name', query.service);
  if (service !== undefined && kind === 'metrics') {
    throw new TelemetryArchiveError(TelemetryArchiveCodes.RECORD_INVALID, 'metrics are stored per device, not per service: query captures or feedback for a service');
  }
  const since = time('since', query.since)!;
  const until = time('until', query.until) ?? Infinity;
  const firstDay = dayOf(since);
  const lastDay = until === Infinity ? '9999-12-31' : dayOf(Math.max(since, until - 1));

  async function* files(): AsyncGenerator<string> {
    for (const day of await listDir(join(dir, kind))) {
      if (parseDay(day) === undefined || day < firstDay || day > lastDay) continue;
      if (kind === 'metrics') {
        for (const name of readableFiles(await listDir(join(dir, kind, day)), device)) yield `${kind}/${day}/${name}`;
        continue;
      }
      // Stray entries (an editor's `.swp`, a `.DS_Store`) are not services; skip them.
      const services = service !== undefined ? [service] : (await listDir(join(dir, kind, day))).filter(isSegment);
      for (const s of services) {
        const sub = serviceDir(kind, day, s);
        // Feedback and logs files are named by device, so one device's read opens only its own.
        for (const name of readableFiles(await listDir(join(dir, sub)), kind === 'feedback' || kind === 'logs' ? device : undefined)) yield `${sub}/${name}`;
      }
    }
  }

  function accept(value: unknown): StoredRecord | undefined {
    const record = asStoredRecord(value, kind);
    if (!record || record.ts < since || record.ts >= until) return undefined;
    // Checked on the record too: on a case-insensitive disk `Dev-1` and `dev-1` share a file.
    if (device !== undefined && record.device !== device) return undefined;
    if (service !== undefined && record.kind !== 'metrics' && record.service !== service) return undefined;
    return record;
  }

  return { dir, files, accept };
}
