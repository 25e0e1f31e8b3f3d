/**
 * One device's own metrics over a window: its latest batch, and a series of CPU, memory, disk and
 * temperature bounded to MAX_SERIES_POINTS however long the window (the window is cut into that
 * many equal slots and each keeps its latest sample), so a month's query costs no more memory than
 * an hour's.
 */
import { MAX_SERIES_POINTS, type DeviceSeriesPoint, type DeviceTelemetry } from '../../shared/api/telemetry.js';
import type { MetricsBatch } from '../../shared/protocol.js';
import type { TelemetryArchive } from './archive.js';
import type { TimeWindow } from './service-report.js';

function pointOf(ts: number, m: MetricsBatch['device']): DeviceSeriesPoint {
  return {
    ts: new Date(ts).toISOString(),
    cpuPercent: m.cpuPercent,
    memoryUsedBytes: m.memory?.usedBytes ?? null,
    memoryTotalBytes: m.memory?.totalBytes ?? null,
    diskUsedBytes: m.disk?.usedBytes ?? null,
    diskTotalBytes: m.disk?.totalBytes ?? null,
    temperatureC: m.temperatureC,
  };
}

export async function deviceReport(
  archive: Pick<TelemetryArchive, 'read'>,
  query: { device: string; invalidMessages: number } & TimeWindow,
): Promise<DeviceTelemetry> {
  const slotMs = Math.max(1, (query.until - query.since) / MAX_SERIES_POINTS);
  const slots = new Map<number, { ts: number; batch: MetricsBatch }>();
  let latest: { ts: number; batch: MetricsBatch } | undefined;
  let samples = 0;
  for await (const record of archive.read({ kind: 'metrics', device: query.device, since: new Date(query.since), until: new Date(query.until) })) {
    samples++;
    const entry = { ts: record.ts, batch: record.data as MetricsBatch };
    // Files are read in write order, not time order: a redelivered batch can come after newer ones.
    if (!latest || entry.ts >= latest.ts) latest = entry;
    const slot = Math.min(MAX_SERIES_POINTS - 1, Math.floor((entry.ts - query.since) / slotMs));
    const kept = slots.get(slot);
    if (!kept || entry.ts >= kept.ts) slots.set(slot, entry);
  }
  return {
    device: query.device,
    since: new Date(query.since).toISOString(),
    until: new Date(query.until).toISOString(),
    samples,
    latest: latest
      ? { from: latest.batch.from, to: latest.batch.to, device: latest.batch.device, containers: latest.batch.containers, outbox: latest.batch.outbox }
      : null,
    series: [...slots.values()].sort((a, b) => a.ts - b.ts).map((e) => pointOf(e.ts, e.batch.device)),
    invalidMessages: query.invalidMessages,
  };
}
