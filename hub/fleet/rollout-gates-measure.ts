/**
 * Measures a rollout's gates (the async half of rollout-gates.ts): the telemetry of exactly the
 * devices the rollout moved and that are healthy on the new revision, each from the moment it
 * became healthy; the old revision's p95 from the devices it has not moved yet, over the same
 * window; and, for the metric gate, the labels clients sent for the new revision's captured
 * answers. The controller stores the figures in the rollout record; the engine decides from them.
 *
 * Telemetry comes in intervals: an interval that ends after a device became healthy counts whole,
 * so its first interval on the new revision may hold a few requests the old one answered.
 */
import type { RolloutGate, RolloutGates } from '../../shared/api/rollouts.js';
import { percentile } from '../../shared/latency-histogram.js';
import type { LabelledData } from '../datasets/labelled-data.js';
import { computeMetric, valueAt } from '../evaluation/metrics.js';
import type { RolloutRecord } from '../store/store.js';
import type { TelemetryArchive } from '../telemetry/archive.js';
import { addRequests, intervalRequests, noRequests, serviceIntervalOf, type RequestTotals } from '../telemetry/request-totals.js';
import { configuredGates, meets, minRequestsOf, parseMetricGate } from './rollout-gates.js';

export interface GateSources {
  archive: Pick<TelemetryArchive, 'read'>;
  /** Absent: a metric gate never gets figures (it waits, then fails at the device timeout). */
  labelled?: Pick<LabelledData, 'rows'> | undefined;
}

export type GateMeter = (rollout: Readonly<RolloutRecord>, now: number) => Promise<RolloutGate[]>;

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

async function metricFigures(sources: GateSources, r: Readonly<RolloutRecord>, gates: RolloutGates, moved: ReadonlyMap<string, number>): Promise<{ value: number | null; count: number }> {
  if (!sources.labelled || moved.size === 0 || r.revision === null) return { value: null, count: 0 };
  const { metric } = parseMetricGate(gates.metric!);
  const pointer = gates.metricOutput ?? '';
  const pairs: Array<{ predicted: unknown; label: unknown }> = [];
  const since = Math.min(...moved.values());
  const rows = sources.labelled.rows({ service: r.service, since: new Date(since).toISOString(), labelled: true, devices: [...moved.keys()], revision: r.revision });
  for await (const row of rows) {
    // Inline examples have no answer to compare; requests before the device was healthy are not the new revision's to judge.
    if (row.output === null || Date.parse(row.time) < moved.get(row.device)!) continue;
    pairs.push({ predicted: valueAt(row.output, pointer), label: row.label });
  }
  return { value: pairs.length ? computeMetric(metric, pairs) : null, count: pairs.length };
}

/** A meter over the hub's telemetry archive and labelled data. */
export function gateMeter(sources: GateSources): GateMeter {
  return async (r, now) => {
    const gates = r.options.gates;
    if (!gates) return [];
    const moved = new Map<string, number>();
    const old = new Map<string, number>();
    for (const [id, d] of Object.entries(r.devices)) if (d.state === 'healthy' && d.batch <= r.batch && d.doneAt !== null) moved.set(id, Date.parse(d.doneAt));
    const since = moved.size ? Math.min(...moved.values()) : now;
    // Devices not moved yet still run what they had: the old revision, over the same window.
    for (const [id, d] of Object.entries(r.devices)) if (d.state === 'waiting' && d.from !== null && d.from !== d.to) old.set(id, since);
    const names = configuredGates(gates);
    const telemetry = names.some((g) => g.name !== 'metric');
    const fresh = telemetry ? await totals(sources.archive, r.service, moved, now) : null;
    const before = names.some((g) => g.name === 'p95' || g.name === 'p95-ratio') ? await totals(sources.archive, r.service, old, now) : null;
    const metric = names.some((g) => g.name === 'metric') ? await metricFigures(sources, r, gates, moved) : null;
    const min = minRequestsOf(gates);
    const baseline = before && before.requests >= min ? p95(before) : null;
    const checkedAt = new Date(now).toISOString();
    return names.map(({ name, threshold }): RolloutGate => {
      const figure = (value: number | null, requests: number, base: number | null = null): RolloutGate => ({
        name,
        threshold,
        value,
        baseline: base,
        ok: value === null || requests < min ? null : meets(name, gates, value),
        requests,
        checkedAt,
        batch: r.batch,
      });
      switch (name) {
        case 'error-rate':
          return figure(fresh!.requests ? fresh!.errors / fresh!.requests : null, fresh!.requests);
        case 'p95':
          return figure(p95(fresh!), fresh!.requests, baseline);
        case 'p95-ratio': {
          // No device left on the old revision (the last batch, a lone canary): nothing to compare with.
          if (old.size === 0) return { ...figure(null, fresh!.requests), ok: fresh!.requests >= min ? true : null };
          const now95 = p95(fresh!);
          return figure(now95 !== null && baseline !== null && baseline > 0 ? now95 / baseline : null, fresh!.requests, baseline);
        }
        case 'metric':
          return figure(metric!.value, metric!.count);
      }
    });
  };
}
