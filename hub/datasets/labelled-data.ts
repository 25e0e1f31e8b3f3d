/**
 * A service's labelled data, read from the telemetry archive: captured requests joined with the
 * labels clients sent for them, by (device, request id) — a request id is the gateway's, so only
 * unique per device — plus the examples clients gave inline (input and label, no answer).
 *
 * Labels for captured requests are read first (a label can arrive long after its request, so it
 * lies in another day's file): those that arrived from MAX_CLOCK_AHEAD_MS before the window's
 * start on, since a capture is filed at most that far ahead of the hub's time (filing-time.ts) and
 * its label arrives after it. Only the label and its time are kept per request; captures then
 * stream past them: memory grows with the labelled requests, not the captures. Inline examples
 * need no such step (their ids are the gateway's own, each batch stored once): a second read
 * streams them. A request labelled twice keeps the label the gateway took last.
 *
 * The window selects records by the time they are filed under, as the archive reads them: a
 * capture's device time (the hub's receive time when the device clock is far off), an inline
 * example's arrival at the hub.
 */
import type { LabelledExportLine } from '../../shared/api/datasets.js';
import type { Logger } from '../../shared/logger.js';
import type { CaptureSample, FeedbackItem } from '../../shared/protocol.js';
import type { TelemetryArchive } from '../telemetry/archive.js';
import { MAX_CLOCK_AHEAD_MS } from '../telemetry/filing-time.js';
import type { CaptureRecord, FeedbackRecord } from '../telemetry/records.js';

export interface LabelledRow {
  requestId: string;
  /** ISO, of the request (capture ts) or of the inline example. */
  time: string;
  device: string;
  /** "NAME:VERSION" of the first model. */
  model: string | null;
  revision: number | null;
  input: unknown;
  output: unknown | null;
  label: unknown | null;
}

/** A row as an export writes it, and as a trainer reads it: the fields of LabelledExportLine only. */
export function exportLine(row: LabelledExportLine): LabelledExportLine {
  return { requestId: row.requestId, time: row.time, device: row.device, model: row.model, input: row.input, output: row.output, label: row.label };
}

export interface LabelledRowFilter {
  service: string;
  /** ISO date-times, on the time a record is filed under (see above); since inclusive, until exclusive. */
  since?: string;
  until?: string;
  /** true: only labelled rows; false: only unlabelled ones; absent: both. */
  labelled?: boolean;
  devices?: readonly string[];
  revision?: number;
}

export interface LabelledData {
  /** Joined: captures ⋈ feedback by (device, requestId); inline examples too; latest label wins. */
  rows(filter: LabelledRowFilter): AsyncIterable<LabelledRow>;
  /** Labels (both kinds) that arrived at the hub after `since` (hub time of arrival), joined to a capture or not. */
  countLabels(service: string, since: string): Promise<number>;
}

type Archive = Pick<TelemetryArchive, 'read'>;

const EPOCH = new Date(0);

function modelOf(models: readonly { name: string; version: number }[]): string | null {
  const first = models[0];
  return first ? `${first.name}:${first.version}` : null;
}

function date(what: string, iso: string | undefined): Date | undefined {
  if (iso === undefined) return undefined;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new RangeError(`${what} ${JSON.stringify(iso)} is not a date-time`);
  return d;
}

/** What the join needs of a request's latest label. */
interface LatestLabel {
  /** The gateway's time, ms. */
  ts: number;
  label: unknown;
}

/** The labels of one service's captured requests by `device\nrequestId` (newline cannot be in either), the latest of each. */
async function latestLabels(archive: Archive, service: string, since: Date): Promise<Map<string, LatestLabel>> {
  const labels = new Map<string, LatestLabel>();
  const arrivedSince = new Date(Math.max(0, since.getTime() - MAX_CLOCK_AHEAD_MS));
  for await (const record of archive.read({ kind: 'feedback', service, since: arrivedSince })) {
    const { device, data } = record as FeedbackRecord;
    const item = data as FeedbackItem;
    if (item.input !== undefined) continue;
    const key = `${device}\n${item.requestId}`;
    const ts = Date.parse(item.ts);
    const seen = labels.get(key);
    // Gateway time orders one device's labels; on a tie the one read later (arrived later) wins.
    if (!seen || seen.ts <= ts) labels.set(key, { ts, label: item.label });
  }
  return labels;
}

export class ArchiveLabelledData implements LabelledData {
  constructor(
    private readonly archive: Archive,
    private readonly logger?: Logger,
  ) {}

  rows(filter: LabelledRowFilter): AsyncIterable<LabelledRow> {
    const since = date('since', filter.since) ?? EPOCH;
    const until = date('until', filter.until);
    const { archive, logger } = this;
    const { service } = filter;
    const devices = filter.devices === undefined ? undefined : new Set(filter.devices);
    const wanted = (row: LabelledRow): boolean => {
      if (devices !== undefined && !devices.has(row.device)) return false;
      if (filter.revision !== undefined && row.revision !== filter.revision) return false;
      return filter.labelled === undefined || filter.labelled === (row.label !== null);
    };
    return (async function* () {
      const labels = await latestLabels(archive, service, since);
      // A request whose body the gateway withheld (too large, not JSON) has nothing to learn from.
      let withoutInput = 0;
      for await (const record of archive.read({ kind: 'captures', service, since, until })) {
        const { device, data } = record as CaptureRecord;
        const sample = data as CaptureSample;
        // Samples from agents older than request ids cannot be labelled, nor named in a row.
        if (sample.requestId === undefined) continue;
        const row: LabelledRow = {
          requestId: sample.requestId,
          time: sample.ts,
          device,
          model: modelOf(sample.models),
          revision: sample.revision,
          input: sample.request.json ?? null,
          // An error answer is no model output.
          output: sample.status < 400 ? (sample.response.json ?? null) : null,
          label: labels.get(`${device}\n${sample.requestId}`)?.label ?? null,
        };
        if (!wanted(row)) continue;
        if (row.input === null) withoutInput += 1;
        else yield row;
      }
      // Inline examples are all labelled.
      if (filter.labelled !== false) {
        for await (const record of archive.read({ kind: 'feedback', service, since, until })) {
          const { device, data } = record as FeedbackRecord;
          const item = data as FeedbackItem;
          if (item.input === undefined) continue;
          const row: LabelledRow = { requestId: item.requestId, time: item.ts, device, model: modelOf(item.models), revision: item.revision, input: item.input, output: null, label: item.label };
          if (!wanted(row)) continue;
          if (row.input === null) withoutInput += 1;
          else yield row;
        }
      }
      if (withoutInput > 0) logger?.debug({ service, rows: withoutInput }, 'labelled data: rows without an input left out');
    })();
  }

  async countLabels(service: string, since: string): Promise<number> {
    let n = 0;
    for await (const _record of this.archive.read({ kind: 'feedback', service, since: date('since', since)! })) n += 1;
    return n;
  }
}
