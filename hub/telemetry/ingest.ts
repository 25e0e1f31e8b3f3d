/**
 * Turns a device's telemetry batch into archive records and stores them, resolving only once they
 * are durable: the broker acknowledges the batch to the device after that, and not before.
 *
 * A batch is stored under `DEVICE/ID`, so one device reusing another's batch id cannot make the
 * hub refuse the other's batch as a duplicate. A batch the hub cannot store (bad times, foreign
 * histogram buckets, names that cannot be file names) is refused with MESSAGE_INVALID: the inbox
 * drops and counts it for that device, and nothing else is affected.
 */
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CapturesBatch, FeedbackBatch, MetricsBatch, TelemetryBatch } from '../../shared/protocol.js';
import type { AppendResult, TelemetryArchive } from './archive.js';
import { batchProblem } from './batch-check.js';
import { TelemetryArchiveCodes } from './errors.js';
import { filingTime, filingWindow, type FilingWindow } from './filing-time.js';
import { FleetCounters } from './fleet-counters.js';
import { logsRecords, ownLogs } from './shipped-logs.js';
import type { ArchiveRecord } from './records.js';

/** Captures of a service without a model are filed under this name and version (real versions start at 1). */
export const NO_MODEL = { name: 'none', version: 0 } as const;

/** Which services a device may report on: a device adds nothing to another service's figures or captures. */
export type ServicesOf = (device: string) => ReadonlySet<string>;

/** The batch without what concerns other services, and how many services' figures or samples were left out. */
function ownPart(batch: TelemetryBatch, own: ReadonlySet<string>): { kept: TelemetryBatch; leftOut: number } {
  if (batch.kind === 'feedback') {
    const items = batch.items.filter((s) => own.has(s.service));
    return { kept: { ...batch, items }, leftOut: batch.items.length - items.length };
  }
  if (batch.kind === 'logs') return ownLogs(batch, own);
  if (batch.kind === 'captures') {
    const samples = batch.samples.filter((s) => own.has(s.service));
    return { kept: { ...batch, samples }, leftOut: batch.samples.length - samples.length };
  }
  const services = Object.entries(batch.services).filter(([name]) => own.has(name));
  const kept = { ...batch, services: Object.fromEntries(services), containers: batch.containers.filter((c) => own.has(c.service)) };
  return { kept, leftOut: Object.keys(batch.services).length - services.length };
}

function metricsRecords(device: string, batch: MetricsBatch, window: FilingWindow): ArchiveRecord[] {
  return [{ kind: 'metrics', device, ts: filingTime(Date.parse(batch.to), window), data: batch }];
}

function captureRecords(device: string, batch: CapturesBatch, window: FilingWindow): ArchiveRecord[] {
  return batch.samples.map((sample) => {
    const model = sample.models[0] ?? NO_MODEL;
    return { kind: 'captures', device, service: sample.service, model: model.name, version: model.version, ts: filingTime(Date.parse(sample.ts), window), data: sample };
  });
}

/**
 * Filed by the hub's time of arrival, not the device's: "labels since the last run" counts what
 * arrived since, and a label's request time is in the item itself (labelled-data.ts joins on it).
 */
function feedbackRecords(device: string, batch: FeedbackBatch, now: number): ArchiveRecord[] {
  return batch.items.map((item) => ({ kind: 'feedback', device, service: item.service, ts: now, data: item }));
}

function records(device: string, batch: TelemetryBatch, window: FilingWindow, now: number): ArchiveRecord[] {
  if (batch.kind === 'metrics') return metricsRecords(device, batch, window);
  if (batch.kind === 'captures') return captureRecords(device, batch, window);
  if (batch.kind === 'logs') return logsRecords(device, batch, window, now);
  return feedbackRecords(device, batch, now);
}

/** The device times the batch is filed by (feedback is filed by hub time). */
function deviceTimes(batch: TelemetryBatch): string[] {
  if (batch.kind === 'metrics') return [batch.to];
  if (batch.kind === 'logs') return batch.lines.map((l) => l.ts);
  return batch.kind === 'captures' ? batch.samples.map((s) => s.ts) : [];
}

/** Archive refusals that are about the batch itself, not the disk: retrying would not help. */
function refusal(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.MESSAGE_INVALID, message, cause === undefined ? {} : { cause });
}

const UNSTORABLE: readonly string[] = [TelemetryArchiveCodes.NAME_INVALID, TelemetryArchiveCodes.RECORD_INVALID];

export class TelemetryIngest {
  /** Stored and duplicate batches are counted by the archive, refused ones by the inbox. */
  readonly fleet: FleetCounters;

  /** Devices whose clock was found far off, warned about once per run (every batch would repeat it). */
  readonly #skewed = new Set<string>();

  /** `retentionDays`: a record filed before the oldest day kept would be deleted at once (filing-time.ts). */
  constructor(private readonly o: { archive: Pick<TelemetryArchive, 'append'>; servicesOf: ServicesOf; clock: Clock; retentionDays: number; logger: Logger }) {
    this.fleet = new FleetCounters(o.logger);
  }

  /**
   * Stores the batch; resolves once it is durable (or was stored before). Rejects with
   * MESSAGE_INVALID for a batch that can never be stored, and with the archive's error when the
   * write failed: then the batch must not be acknowledged, so the device sends it again.
   */
  async accept(device: string, batch: TelemetryBatch): Promise<AppendResult> {
    const problem = batchProblem(batch);
    if (problem) throw refusal(problem);
    // Figures of services the device neither should run nor reports are left out (a removed
    // service's last batch, or a device making things up): counted, not refused, so the rest is kept.
    const { kept, leftOut } = ownPart(batch, this.o.servicesOf(device));
    if (leftOut > 0) this.o.logger.warn({ deviceId: device, batch: batch.id, leftOut }, 'telemetry about services the device does not run was left out');
    if ((kept.kind === 'captures' && kept.samples.length === 0) || (kept.kind === 'feedback' && kept.items.length === 0) || (kept.kind === 'logs' && kept.lines.length === 0 && Object.keys(kept.dropped).length === 0)) return 'stored';
    const now = this.o.clock.now();
    const window = filingWindow(now, this.o.retentionDays);
    if (!this.#skewed.has(device)) {
      const offBy = deviceTimes(kept).find((ts) => filingTime(Date.parse(ts), window) !== Date.parse(ts));
      if (offBy !== undefined) {
        this.#skewed.add(device);
        this.o.logger.warn({ deviceId: device, batch: batch.id, deviceTime: offBy }, "the device's clock is far off: its telemetry is filed at the time the hub received it");
      }
    }
    let result: AppendResult;
    try {
      result = await this.o.archive.append(`${device}/${batch.id}`, records(device, kept, window, now));
    } catch (err) {
      if (isEdgemlError(err) && UNSTORABLE.includes(err.code)) throw refusal(err.message, err);
      throw err;
    }
    if (result === 'stored' && kept.kind === 'metrics') this.fleet.add(device, kept);
    return result;
  }
}
