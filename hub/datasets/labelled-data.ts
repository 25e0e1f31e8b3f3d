/**
 * A service's labelled data, read from the telemetry archive: captured requests joined with the
 * labels clients sent for them, by (device, request id) — a request id is the gateway's, so only
 * unique per device — plus the examples clients gave inline (input and label, no answer).
 *
 * Labels are read first (a label can arrive long after its request, so it lies in another day's
 * file): those that arrived from a day before the window's start on, since a label arrives after
 * its request unless the device clock runs ahead of the hub's by more than that. Captures then
 * stream past them: memory grows with the labels, not the captures.
 * A request labelled twice keeps the label the gateway took last.
 */
import type { CaptureSample, FeedbackItem } from '../../shared/protocol.js';
import type { TelemetryArchive } from '../telemetry/archive.js';
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

export interface LabelledRowFilter {
  service: string;
  /** ISO date-times; on the request's time; since inclusive, until exclusive. */
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
  /** Labels (both kinds) that arrived at the hub after `since` (hub time of arrival). */
  countLabels(service: string, since: string): Promise<number>;
}

type Archive = Pick<TelemetryArchive, 'read'>;

const EPOCH = new Date(0);
/** How far ahead of the hub a device clock may run before its labels are missed (see above). */
const LABEL_CLOCK_SLACK_MS = 86_400_000;

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

/** The labels of one service by `device\nrequestId` (newline cannot be in either), the latest of each. */
async function latestLabels(archive: Archive, service: string, since: Date): Promise<Map<string, { device: string; item: FeedbackItem }>> {
  const labels = new Map<string, { device: string; item: FeedbackItem }>();
  const arrivedSince = new Date(Math.max(0, since.getTime() - LABEL_CLOCK_SLACK_MS));
  for await (const record of archive.read({ kind: 'feedback', service, since: arrivedSince })) {
    const { device, data } = record as FeedbackRecord;
    const item = data as FeedbackItem;
    const key = `${device}\n${item.requestId}`;
    const seen = labels.get(key);
    // Gateway time orders one device's labels; on a tie the one read later (arrived later) wins.
    if (!seen || Date.parse(seen.item.ts) <= Date.parse(item.ts)) labels.set(key, { device, item });
  }
  return labels;
}

export class ArchiveLabelledData implements LabelledData {
  constructor(private readonly archive: Archive) {}

  rows(filter: LabelledRowFilter): AsyncIterable<LabelledRow> {
    const since = date('since', filter.since) ?? EPOCH;
    const until = date('until', filter.until);
    const archive = this.archive;
    const devices = filter.devices === undefined ? undefined : new Set(filter.devices);
    const wanted = (row: LabelledRow): boolean => {
      const t = Date.parse(row.time);
      if (t < since.getTime() || (until !== undefined && t >= until.getTime())) return false;
      if (devices !== undefined && !devices.has(row.device)) return false;
      if (filter.revision !== undefined && row.revision !== filter.revision) return false;
      return filter.labelled === undefined || filter.labelled === (row.label !== null);
    };
    return (async function* () {
      const labels = await latestLabels(archive, filter.service, since);
      for await (const record of archive.read({ kind: 'captures', service: filter.service, since, until })) {
        const { device, data } = record as CaptureRecord;
        const sample = data as CaptureSample;
        // Samples from agents older than request ids cannot be labelled, nor named in a row.
        if (sample.requestId === undefined) continue;
        const label = labels.get(`${device}\n${sample.requestId}`);
        // An inline example's id is the gateway's own: it never names a captured request.
        const row: LabelledRow = {
          requestId: sample.requestId,
          time: sample.ts,
          device,
          model: modelOf(sample.models),
          revision: sample.revision,
          input: sample.request.json ?? null,
          // An error answer is no model output.
          output: sample.status < 400 ? (sample.response.json ?? null) : null,
          label: label !== undefined && label.item.input === undefined ? label.item.label : null,
        };
        if (wanted(row)) yield row;
      }
      for (const { device, item } of labels.values()) {
        if (item.input === undefined) continue;
        const row: LabelledRow = { requestId: item.requestId, time: item.ts, device, model: modelOf(item.models), revision: item.revision, input: item.input, output: null, label: item.label };
        if (wanted(row)) yield row;
      }
    })();
  }

  async countLabels(service: string, since: string): Promise<number> {
    let n = 0;
    for await (const _record of this.archive.read({ kind: 'feedback', service, since: date('since', since)! })) n += 1;
    return n;
  }
}
