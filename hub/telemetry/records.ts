/**
 * What the archive stores: one JSON line per record, in the file its kind, day and names select.
 * Records are checked before anything of their batch is buffered, so a batch is stored whole or
 * refused whole.
 */
import { TelemetryArchiveCodes, TelemetryArchiveError } from './errors.js';
import { capturesFile, dayOf, feedbackFile, logsFile, MAX_TS, metricsFile, type RecordKind } from './layout.js';

export interface MetricsRecord {
  kind: 'metrics';
  device: string;
  /** ms since the epoch: it picks the day file. The device's time, so late batches land on their own day, unless it is far off (filing-time.ts). */
  ts: number;
  data: unknown;
}

export interface CaptureRecord {
  kind: 'captures';
  device: string;
  service: string;
  model: string;
  version: number | string;
  ts: number;
  data: unknown;
}

/** Labels a device's gateway took for one service (shared/protocol.ts FeedbackItem in `data`). */
export interface FeedbackRecord {
  kind: 'feedback';
  device: string;
  service: string;
  /** When the hub received it, not the device's time: new labels are counted by arrival (labelled-data.ts). */
  ts: number;
  data: unknown;
}

/** Error lines a device shipped for one service (hub/telemetry/shipped-logs.ts has `data`'s shapes). */
export interface LogsRecord {
  kind: 'logs';
  device: string;
  service: string;
  /** The line's time on the device (filed as metrics are: filing-time.ts). */
  ts: number;
  data: unknown;
}

export type ArchiveRecord = MetricsRecord | CaptureRecord | FeedbackRecord | LogsRecord;

/** A record as read back: with the id of the batch that brought it. */
export type StoredRecord = ArchiveRecord & { batch: string };

/** Room for the hub's `DEVICE/ID` (64 + 1 + 64 characters) and then some. */
export const MAX_BATCH_ID_LENGTH = 192;

export function checkBatchId(batchId: unknown): string {
  if (typeof batchId !== 'string' || batchId.length === 0 || batchId.length > MAX_BATCH_ID_LENGTH) {
    throw new TelemetryArchiveError(TelemetryArchiveCodes.RECORD_INVALID, `batch id must be a string of 1-${MAX_BATCH_ID_LENGTH} characters, not ${JSON.stringify(batchId)}`);
  }
  return batchId;
}

function checkTs(ts: unknown): number {
  if (typeof ts !== 'number' || !Number.isInteger(ts) || ts < 0 || ts > MAX_TS) {
    throw new TelemetryArchiveError(TelemetryArchiveCodes.RECORD_INVALID, `record timestamp must be whole ms since 1970 before year 10000, not ${JSON.stringify(ts)}`);
  }
  return ts;
}

/** The file (relative to the archive) and the line that store `record`; throws on anything unstorable. */
export function placeRecord(record: ArchiveRecord, batchId: string): { file: string; line: string } {
  const day = dayOf(checkTs(record.ts));
  let file: string;
  switch (record.kind) {
    case 'metrics':
      file = metricsFile(day, record.device);
      break;
    case 'captures':
      file = capturesFile(day, record.service, record.model, String(record.version));
      break;
    case 'feedback':
      file = feedbackFile(day, record.service, record.device);
      break;
    case 'logs':
      file = logsFile(day, record.service, record.device);
      break;
    default:
      throw new TelemetryArchiveError(TelemetryArchiveCodes.RECORD_INVALID, `record kind must be 'metrics', 'captures', 'feedback' or 'logs', not ${JSON.stringify((record as { kind: unknown }).kind)}`);
  }
  let line: string;
  try {
    line = `${JSON.stringify({ ...record, batch: batchId })}\n`;
  } catch (err) {
    throw new TelemetryArchiveError(TelemetryArchiveCodes.RECORD_INVALID, `record cannot be written as JSON: ${(err as Error).message}`, { cause: err });
  }
  return { file, line };
}

/** A line read back, if it has the shape of a stored record of `kind` (damaged lines are skipped, not trusted). */
export function asStoredRecord(value: unknown, kind: RecordKind): StoredRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (v.kind !== kind || typeof v.ts !== 'number' || typeof v.device !== 'string' || typeof v.batch !== 'string') return undefined;
  if (kind !== 'metrics' && typeof v.service !== 'string') return undefined;
  if (kind === 'captures' && typeof v.model !== 'string') return undefined;
  return value as StoredRecord;
}
