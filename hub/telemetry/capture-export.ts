/**
 * Captured samples of one service as NDJSON lines (the sample, plus the device that sent it), read
 * from the archive as they are written out: an export of a month holds one line in memory at a
 * time. Samples come day by day, not sorted within a day.
 */
import type { CaptureRecord } from './records.js';
import type { TelemetryArchive } from './archive.js';
import type { TimeWindow } from './service-report.js';

export interface CaptureFilter extends TimeWindow {
  service: string;
  device?: string | undefined;
  /** `NAME` or `NAME:VERSION` (checked by the API schema). */
  model?: string | undefined;
}

/** Opens the read at once, so a query the archive refuses fails before any line is sent. */
export function captureLines(archive: Pick<TelemetryArchive, 'read'>, filter: CaptureFilter): AsyncIterable<string> {
  const [name, version] = filter.model?.split(':') ?? [];
  const records = archive.read({ kind: 'captures', service: filter.service, device: filter.device, since: new Date(filter.since), until: new Date(filter.until) });
  return (async function* () {
    for await (const record of records) {
      const r = record as CaptureRecord;
      if (name !== undefined && r.model !== name) continue;
      if (version !== undefined && String(r.version) !== version) continue;
      yield `${JSON.stringify({ ...(r.data as object), device: r.device })}\n`;
    }
  })();
}
