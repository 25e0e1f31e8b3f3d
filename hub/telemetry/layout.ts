/**
 * Where the archive puts things under the user's storage directory, and the only place that turns
 * names from devices into path segments. Every segment must match one strict pattern, so no device
 * id, service, model or version can climb out with `..` or `/`, or hide with a leading dot.
 *
 *   metrics/YYYY-MM-DD/DEVICE.jsonl                   one device's metrics of one day
 *   captures/YYYY-MM-DD/SERVICE/MODEL@VERSION.jsonl   one model version's samples of one day
 *   feedback/YYYY-MM-DD/SERVICE/DEVICE.jsonl          labels one device sent for a service, by the (hub) day they arrived
 *   logs/YYYY-MM-DD/SERVICE/DEVICE.jsonl              error lines one device shipped for a service (`shipLogs: error`)
 *   journal/YYYY-MM-DD.jsonl                          commit log of the writes of that (hub) day
 *
 * Day-first under each kind so retention deletes whole directories and a time-range query opens
 * only the days it needs. Days are UTC, so they do not shift with the hub's time zone.
 */
import { TelemetryArchiveCodes, TelemetryArchiveError } from './errors.js';

/** Covers device ids (shared/topics.ts), service names, model names and versions; `@` is left out as the separator. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
export const DAY_MS = 86_400_000;
/** Year 9999: beyond it a day no longer has the YYYY-MM-DD form. */
export const MAX_TS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export const KIND_ROOTS = ['metrics', 'captures', 'feedback', 'logs'] as const;
export type RecordKind = (typeof KIND_ROOTS)[number];
export const JOURNAL_ROOT = 'journal';

export function isSegment(value: string): boolean {
  return SEGMENT.test(value);
}

export function checkSegment(what: string, value: unknown): string {
  if (typeof value !== 'string' || !SEGMENT.test(value)) {
    throw new TelemetryArchiveError(
      TelemetryArchiveCodes.NAME_INVALID,
      `${what} ${JSON.stringify(value)} cannot be stored: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return value;
}

export function dayOf(ts: number): string {
  return new Date(ts).toISOString().slice(0, 10);
}

/** Midnight UTC of a `YYYY-MM-DD` name, or undefined for anything else (stray files are left alone). */
export function parseDay(name: string): number | undefined {
  const m = DAY.exec(name);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return dayOf(ms) === name ? ms : undefined;
}

/** Paths are relative to the archive directory and use `/`: they are also the journal's keys. */
export function metricsFile(day: string, device: string): string {
  return `metrics/${day}/${checkSegment('device id', device)}.jsonl`;
}

/** The directory of one service's records of one day, for the kinds stored per service. */
export function serviceDir(kind: Exclude<RecordKind, 'metrics'>, day: string, service: string): string {
  return `${kind}/${day}/${checkSegment('service name', service)}`;
}

export function capturesFile(day: string, service: string, model: string, version: string): string {
  return `${serviceDir('captures', day, service)}/${checkSegment('model name', model)}@${checkSegment('model version', version)}.jsonl`;
}

export function feedbackFile(day: string, service: string, device: string): string {
  return `${serviceDir('feedback', day, service)}/${checkSegment('device id', device)}.jsonl`;
}

export function logsFile(day: string, service: string, device: string): string {
  return `${serviceDir('logs', day, service)}/${checkSegment('device id', device)}.jsonl`;
}

export function journalFile(day: string): string {
  return `${JOURNAL_ROOT}/${day}.jsonl`;
}

/** The day names from `since` to `until`, both included. */
export function daysBetween(since: number, until: number): string[] {
  const days: string[] = [];
  for (let d = Math.floor(since / DAY_MS) * DAY_MS; d <= until; d += DAY_MS) days.push(dayOf(d));
  return days;
}
