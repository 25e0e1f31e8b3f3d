/**
 * Measures a rollout's gates (the async half of rollout-gates.ts): the telemetry of exactly the
 * devices the current batch moved and that are healthy on the new revision, each from the moment
 * it became healthy (earlier batches were judged on their own: a later batch must show its own
 * requests, not pass on the canary's history); the old revision's p95 from a sample of the devices
 * not moved yet, over the batch's window; and, for the metric gate, the labels clients sent for
 * the batch's answers. The controller stores the figures in the rollout record; the engine decides.
 *
 * Telemetry comes in intervals: an interval that ends after a device became healthy counts whole,
 * so its first interval on the new revision may hold a few requests the old one answered.
 */
import type { RolloutGate, RolloutGateName, RolloutGates } from '../../shared/api/rollouts.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { percentile } from '../../shared/latency-histogram.js';
import type { LabelledData } from '../datasets/labelled-data.js';
import { valueAt } from '../../shared/json-pointer.js';
import { computeMetric } from '../evaluation/metrics.js';
import type { RolloutRecord } from '../store/store.js';
import type { TelemetryArchive } from '../telemetry/archive.js';
import { addRequests, intervalRequests, noRequests, serviceIntervalOf, type RequestTotals } from '../telemetry/request-totals.js';
import { configuredGates, meets, minRequestsOf, parseMetricGate } from './rollout-gates.js';

export interface GateSources {
  archive: Pick<TelemetryArchive, 'read'>;
  /** Absent: a metric gate never gets figures (it waits, then fails at the device timeout). */
  labelled?: Pick<LabelledData, 'rows'> | undefined;
}

/**
 * The figures of the rollout's gates. When some gates could not be measured it throws a
 * GateMeasureError carrying the figures of the others: one gate's trouble (an unreadable archive
 * day, odd labels) does not blank the rest.
 */
export type GateMeter = (rollout: Readonly<RolloutRecord>, now: number) => Promise<RolloutGate[]>;

export class GateMeasureError extends EdgemlError {
  constructor(
    /** Figures of the gates that were measured. */
    readonly figures: RolloutGate[],
    readonly failed: ReadonlyArray<{ gate: RolloutGateName; err: unknown }>,
  ) {
    const first = failed[0]!;
    super(ErrorCodes.HUB_ROLLOUT_GATE_MEASURE_FAILED, `could not measure gate ${failed.map((f) => f.gate).join(', ')}: ${first.err instanceof Error ? first.err.message : String(first.err)}`, { cause: first.err, retryable: true });
    this.name = 'GateMeasureError';
  }
}

/**
 * The old revision's p95 comes from at most this many devices not moved yet: enough for a
 * baseline, and the archive is read per device.
 */
export const BASELINE_SAMPLE = 20;

/** One service's requests, 5xx answers and latency over several devices, each over its own window up to `until`. */
async function totals(archive: GateSources['archive'], service: string, windows: ReadonlyMap<string, number>, until: number): Promise<RequestTotals> {
  let sum = noRequests();
  for (const [device, since] of windows) {
    if (since >= until) continue;
    for await (const record of archive.read({ kind: 'metrics', device, since: new Date(since), until: new Date(until) })) {
      const m = serviceIntervalOf(record, service);
      if (m) sum = addRequests(sum, intervalRequests(m));
    }
  }
  return sum;
}

const p95 = (t: RequestTotals) => percentile(t.latencyMs, 95) ?? null;

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The metric over the batch's labelled answers. For accuracy an answer without a value at the
 * pointer is a wrong one; mae and rmse compare numbers, so a label that is not a number is left
 * out (the client's, not the model's), and an answer that is not one is a miss: left out of the
 * value, counted apart.
 */
async function metricFigures(sources: GateSources, r: Readonly<RolloutRecord>, gates: RolloutGates, moved: ReadonlyMap<string, number>): Promise<{ value: number | null; count: number; misses: number }> {
  if (!sources.labelled || moved.size === 0 || r.revision === null) return { value: null, count: 0, misses: 0 };
  const { metric } = parseMetricGate(gates.metric!);
  const numeric = metric !== 'accuracy';
  const pointer = gates.metricOutput ?? '';
  const pairs: Array<{ predicted: unknown; label: unknown }> = [];
  let misses = 0;
  const since = Math.min(...moved.values());
  const rows = sources.labelled.rows({ service: r.service, since: new Date(since).toISOString(), labelled: true, devices: [...moved.keys()], revision: r.revision });
  for await (const row of rows) {
    // Inline examples have no answer to compare; requests before the device was healthy are not the new revision's to judge.
    if (row.output === null || Date.parse(row.time) < moved.get(row.device)!) continue;
    if (numeric && !isNumber(row.label)) continue;
    const predicted = valueAt(row.output, pointer);
    if (numeric && !isNumber(predicted)) misses += 1;
    else pairs.push({ predicted, label: row.label });
  }
  return { value: pairs.length ? computeMetric(metric, pairs) : null, count: pairs.length, misses };
}

/** A meter over the hub's telemetry archive and labelled data. */
export function gateMeter(sources: GateSources): GateMeter {
  return async (r, now) => {
    const gates = r.options.gates;
    if (!gates) return [];
    const moved = new Map<string, number>();
    for (const [id, d] of Object.entries(r.devices)) if (d.state === 'healthy' && d.batch === r.batch && d.doneAt !== null) moved.set(id, Date.parse(d.doneAt));
    const since = moved.size ? Math.min(...moved.values()) : now;
    // Devices not moved yet still run what they had: the old revision, over the same window.
    const waiting = Object.keys(r.devices)
      .filter((id) => {
        const d = r.devices[id]!;
        return d.state === 'waiting' && d.from !== null && d.from !== d.to;
      })
      .sort();
    const old = new Map(waiting.slice(0, BASELINE_SAMPLE).map((id) => [id, since]));
    // Each source read once, on first use; a failure stays with the gates that need it.
    const once = <T>(read: () => Promise<T>) => {
      let p: Promise<T> | undefined;
      return () => (p ??= read());
    };
    const fresh = once(() => totals(sources.archive, r.service, moved, now));
    const before = once(() => totals(sources.archive, r.service, old, now));
    const metric = once(() => metricFigures(sources, r, gates, moved));
    const min = minRequestsOf(gates);
    const checkedAt = new Date(now).toISOString();
    const figures: RolloutGate[] = [];
    const failed: Array<{ gate: RolloutGateName; err: unknown }> = [];
    for (const { name, threshold } of configuredGates(gates)) {
      const figure = (value: number | null, requests: number, extra: Partial<RolloutGate> = {}): RolloutGate => ({
        name,
        threshold,
        value,
        baseline: null,
        ok: value === null || requests < min ? null : meets(name, gates, value),
        requests,
        checkedAt,
        batch: r.batch,
        ...extra,
      });
      const oldRevision = async () => {
        const b = await before();
        return { baseline: b.requests >= min ? p95(b) : null, baselineRequests: b.requests };
      };
      try {
        switch (name) {
          case 'error-rate': {
            const f = await fresh();
            figures.push(figure(f.requests ? f.errors / f.requests : null, f.requests));
            break;
          }
          case 'p95': {
            const f = await fresh();
            figures.push(figure(p95(f), f.requests, old.size ? await oldRevision() : {}));
            break;
          }
          case 'p95-ratio': {
            const f = await fresh();
            // No device left on the old revision (the last batch, a lone canary): nothing to compare with, it passes.
            if (old.size === 0) {
              figures.push({ ...figure(null, f.requests), ok: f.requests >= min ? true : null });
              break;
            }
            // An old revision with too few requests gives no baseline: the gate waits, then fails at the device timeout naming it.
            const o = await oldRevision();
            const now95 = p95(f);
            figures.push(figure(now95 !== null && o.baseline !== null && o.baseline > 0 ? now95 / o.baseline : null, f.requests, o));
            break;
          }
          case 'metric': {
            const m = await metric();
            figures.push(figure(m.value, m.count, { misses: m.misses }));
            break;
          }
        }
      } catch (err) {
        failed.push({ gate: name, err });
      }
    }
    if (failed.length) throw new GateMeasureError(figures, failed);
    return figures;
  };
}
