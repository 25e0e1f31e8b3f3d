/** A telemetry archive in a temp dir whose hub time stands still, for the archive's tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { pino } from 'pino';
import type { Clock } from '../../shared/clock.js';
import { TelemetryArchive } from '../../hub/telemetry/archive.js';
import type { StoredRecord } from '../../hub/telemetry/records.js';

export const ARCHIVE_NOW = Date.parse('2024-05-03T12:00:00Z');
export const archiveLogger = pino({ level: 'silent' });
/** The hub's time stands still (it picks the journal's day); timers are real so batched fsyncs happen. */
export const archiveClock: Clock = { now: () => ARCHIVE_NOW, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

export async function archiveDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-telemetry-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function openArchive(t: ExecutionContext, dir: string): Promise<TelemetryArchive> {
  const archive = await TelemetryArchive.open(dir, { clock: archiveClock, logger: archiveLogger, fsyncEveryMs: 5 });
  t.teardown(() => archive.close());
  return archive;
}

export async function collect(records: AsyncIterable<StoredRecord>): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for await (const record of records) out.push(record);
  return out;
}
