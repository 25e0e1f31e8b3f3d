/**
 * Model-aware rollout gates as the engine's HealthGates. The engine stays pure and crash-safe: a
 * gate judges only from the figures stored in the rollout record (`RolloutRecord.gates`), which the
 * controller measures asynchronously (rollout-gates-measure.ts) when a gate asks for them. A gate
 * with too few requests waits, asking for fresh figures now and then, until the device timeout
 * after the soak; then it fails, since the rollout could not be shown to be good.
 */
import { GATE_METRIC_PATTERN, ROLLOUT_GATE_FIELDS, ROLLOUT_GATE_NAMES, type RolloutGate, type RolloutGateName, type RolloutGates } from '../../shared/api/rollouts.js';
import { DEFAULT_ROLLOUT } from '../../shared/api/rollouts.js';
import { parseDuration } from '../../shared/duration.js';
import type { RolloutRecord } from '../store/store.js';
import type { HealthGate } from './rollout-engine.js';

/** How often a waiting gate asks for new figures: telemetry comes in intervals, no need to read the archive on every tick. */
export const MEASURE_EVERY_MS = 3000;

export type Comparison = '>=' | '<=' | '>' | '<';
export interface MetricGate {
  metric: 'accuracy' | 'mae' | 'rmse';
  op: Comparison;
  threshold: number;
}

/** `accuracy>=0.9` → its parts; the text matched GATE_METRIC_PATTERN (the API schema checked it). */
export function parseMetricGate(text: string): MetricGate {
  const match = new RegExp(GATE_METRIC_PATTERN).exec(text);
  if (!match) throw new RangeError(`not a metric gate: ${text} (e.g. accuracy>=0.9)`);
  return { metric: match[1] as MetricGate['metric'], op: match[2] as Comparison, threshold: Number(match[3]) };
}

export function compare(value: number, op: Comparison, threshold: number): boolean {
  switch (op) {
    case '>=':
      return value >= threshold;
    case '<=':
      return value <= threshold;
    case '>':
      return value > threshold;
    case '<':
      return value < threshold;
  }
}

/** What a failed comparison shows: `0.82 < 0.9` for `>=`. */
const NEGATION: Record<Comparison, Comparison> = { '>=': '<', '<=': '>', '>': '<=', '<': '>=' };

const FIELD_OF: Record<RolloutGateName, (typeof ROLLOUT_GATE_FIELDS)[number]> = { 'error-rate': 'errorRate', p95: 'p95', 'p95-ratio': 'p95Ratio', metric: 'metric' };

/** The gates a rollout has, in check order, each with its threshold as given. */
export function configuredGates(gates: RolloutGates | undefined): Array<{ name: RolloutGateName; threshold: string }> {
  if (!gates) return [];
  return ROLLOUT_GATE_NAMES.filter((name) => gates[FIELD_OF[name]] !== undefined).map((name) => ({ name, threshold: String(gates[FIELD_OF[name]]) }));
}

export function minRequestsOf(gates: RolloutGates): number {
  return gates.minRequests ?? DEFAULT_ROLLOUT.gateMinRequests;
}

/** Whether a measured value meets the gate's threshold (the value is not null). */
export function meets(name: RolloutGateName, gates: RolloutGates, value: number): boolean {
  switch (name) {
    case 'error-rate':
      return value <= Number(gates.errorRate!.slice(0, -1)) / 100;
    case 'p95':
      return value <= parseDuration(gates.p95!);
    case 'p95-ratio':
      return value <= gates.p95Ratio!;
    case 'metric': {
      const m = parseMetricGate(gates.metric!);
      return compare(value, m.op, m.threshold);
    }
  }
}

const msText = (v: number) => `${Math.round(v)}ms`;
const number = (v: number) => String(Number(v.toPrecision(4)));

/** Why a gate failed, from its figures alone: the metric, the measured value and the threshold. */
export function breachReason(g: RolloutGate): string {
  const old = g.baseline === null ? '' : ` (old revision ${msText(g.baseline)})`;
  switch (g.name) {
    case 'error-rate':
      return `error rate ${(g.value! * 100).toFixed(1)}% > ${g.threshold} (${g.requests} requests)`;
    case 'p95':
      return `p95 ${msText(g.value!)} > ${g.threshold}${old}`;
    case 'p95-ratio':
      return `p95 ratio ${number(g.value!)} > ${g.threshold} (new revision ${msText(g.value! * g.baseline!)}, old revision ${msText(g.baseline!)})`;
    case 'metric': {
      const m = parseMetricGate(g.threshold);
      return `${m.metric} ${number(g.value!)} ${NEGATION[m.op]} ${number(m.threshold)} (${g.requests} labelled answers)`;
    }
  }
}

/** Why a gate still waiting at the device timeout fails: what it had, and what it needed. */
export function shortReason(g: RolloutGate, gates: RolloutGates, deviceTimeout: string): string {
  const min = minRequestsOf(gates);
  const within = `within ${deviceTimeout} after the soak`;
  if (g.name === 'metric') {
    const misses = g.misses ? ` (and ${g.misses} without a usable value at ${gates.metricOutput})` : '';
    return `${g.requests} labelled answers${misses} ${within}, fewer than the ${min} it needs`;
  }
  // The new revision had enough: the old one, which p95-ratio compares with, did not.
  if (g.name === 'p95-ratio' && g.requests >= min) return `old revision: ${g.baselineRequests ?? 0} requests ${within}, fewer than the ${min} it needs to compare with`;
  return `${g.requests} requests ${within}, fewer than the ${min} it needs`;
}

/**
 * The rollout's own gates (from `options.gates`) as HealthGates reading the stored figures of the
 * batch, measured at or after `since` (the end of the batch's soak). None for a rollback: it
 * restores what ran before and must not be stopped. A gate short of requests fails at the device
 * timeout only from figures measured after it (and after `trustedFrom`, when agents have had time
 * to deliver what they buffered while the hub was down): stored figures may be old.
 */
export function recordedGates(r: Readonly<RolloutRecord>): HealthGate[] {
  const gates = r.options.gates;
  if (!gates || r.kind === 'rollback') return [];
  const deviceTimeout = parseDuration(r.options.deviceTimeout);
  return configuredGates(gates).map(({ name }) => ({
    name,
    check(rollout, batch, now, since, trustedFrom) {
      const timedOut = now - since >= deviceTimeout && now >= trustedFrom;
      const f = rollout.gates?.find((g) => g.name === name && g.batch === batch && Date.parse(g.checkedAt) >= since);
      // None stored (a measurement that keeps failing): the wait ends at the device timeout all the same.
      if (!f) return timedOut ? { ok: false, reason: `no figures within ${rollout.options.deviceTimeout} after the soak` } : { ok: null, measure: true };
      if (f.ok === true) return { ok: true };
      if (f.ok === false) return { ok: false, reason: breachReason(f) };
      const checkedAt = Date.parse(f.checkedAt);
      if (timedOut && checkedAt >= Math.max(since + deviceTimeout, trustedFrom)) return { ok: false, reason: shortReason(f, gates, rollout.options.deviceTimeout) };
      // At the timeout, figures from before it do not decide: one more measurement does.
      return { ok: null, measure: timedOut || now - checkedAt >= MEASURE_EVERY_MS };
    },
  }));
}
