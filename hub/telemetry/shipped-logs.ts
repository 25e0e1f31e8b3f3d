/**
 * Error lines devices ship with their telemetry (`shipLogs: error`): archive records of kind `logs`
 * (one per line, and one per service with the lines the device's rate limit left out), and the
 * query behind `GET /api/v1/telemetry/services/{service}/logs`.
 */
import type { LogsBatch, ShippedLogLine } from '../../shared/protocol.js';
import type { TelemetryArchive } from './archive.js';
import { filingTime, type FilingWindow } from './filing-time.js';
import type { LogsRecord } from './records.js';

/** What a `logs` record holds: one line, or a count of lines left out on the device. */
export type ShippedLogData = Omit<ShippedLogLine, 'service'> | { dropped: number };

/** The batch's part about the services in `own`, and how many lines or counts were left out. */
export function ownLogs(batch: LogsBatch, own: ReadonlySet<string>): { kept: LogsBatch; leftOut: number } {
  const lines = batch.lines.filter((l) => own.has(l.service));
  const dropped = Object.fromEntries(Object.entries(batch.dropped).filter(([s]) => own.has(s)));
  return { kept: { ...batch, lines, dropped }, leftOut: batch.lines.length - lines.length + Object.keys(batch.dropped).length - Object.keys(dropped).length };
}

/** Lines are filed by their device time (unless it is far off); counts of dropped lines by the hub's. */
export function logsRecords(device: string, batch: LogsBatch, window: FilingWindow, now: number): LogsRecord[] {
  const lines = batch.lines.map(({ service, ...line }): LogsRecord => ({ kind: 'logs', device, service, ts: filingTime(Date.parse(line.ts), window), data: line satisfies ShippedLogData }));
  const drops = Object.entries(batch.dropped)
    .filter(([, n]) => n > 0)
    .map(([service, n]): LogsRecord => ({ kind: 'logs', device, service, ts: now, data: { dropped: n } satisfies ShippedLogData }));
  return [...lines, ...drops];
}

export interface ShippedLogsQuery {
  service: string;
  device?: string | undefined;
  since: Date;
  until?: Date | undefined;
  limit: number;
}

export interface ShippedLogsAnswer {
  service: string;
  lines: Array<{ ts: string; device: string; replica: number; stream: 'stdout' | 'stderr'; line: string }>;
  dropped: number;
}

/**
 * The newest `limit` lines in the range, oldest first, and the lines devices left out in it. Reads
 * the range once, keeping at most `limit` lines in memory.
 */
export async function queryShippedLogs(archive: Pick<TelemetryArchive, 'read'>, q: ShippedLogsQuery): Promise<ShippedLogsAnswer> {
  const kept: Array<{ at: number; line: ShippedLogsAnswer['lines'][number] }> = [];
  let dropped = 0;
  for await (const r of archive.read({ kind: 'logs', service: q.service, device: q.device, since: q.since, until: q.until })) {
    const data = r.data as ShippedLogData;
    if ('dropped' in data) {
      dropped += data.dropped;
      continue;
    }
    kept.push({ at: r.ts, line: { ts: data.ts, device: r.device, replica: data.replica, stream: data.stream, line: data.line } });
    // Files come day by day and device by device: trim to the newest once twice the limit piles up.
    if (kept.length >= 2 * q.limit) trim(kept, q.limit);
  }
  trim(kept, q.limit);
  return { service: q.service, lines: kept.map((k) => k.line), dropped };
}

function trim(kept: Array<{ at: number; line: { device: string } }>, limit: number): void {
  kept.sort((a, b) => a.at - b.at);
  kept.splice(0, Math.max(0, kept.length - limit));
}
