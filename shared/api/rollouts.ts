/**
 * Rollouts: every change of a deployment's image or target (create, `service update`, rollback) moves
 * its devices to a revision (or in and out of the service, for a new target) by a strategy — all at once, in batches, or a canary first — with health gates, an abort
 * threshold and automatic rollback. The hub validates requests with these schemas and they produce
 * the OpenAPI document.
 */
import { Type, type Static } from '@sinclair/typebox';
import { JSON_POINTER_PATTERN, MAX_JSON_POINTER_LENGTH, pointerProblem } from '../json-pointer.js';
import { DURATION_EXAMPLES, DURATION_PATTERN, parseDuration } from '../duration.js';
import { LATENCY_BOUNDS_MS } from '../latency-histogram.js';
import { stringEnum } from '../schema.js';
import { Timestamp } from './common.js';
import { Labels } from './devices.js';

export const ROLLOUT_STRATEGIES = ['all-at-once', 'batches', 'canary'] as const;
export type RolloutStrategy = (typeof ROLLOUT_STRATEGIES)[number];

/** A count of devices, or a share of the devices the rollout targets. */
export const SHARE_PATTERN = '^(?:[0-9]{1,6}|(?:100|[1-9]?[0-9])(?:\\.[0-9]+)?%)$';
const Share = (description: string, examples: string[]) => Type.String({ pattern: SHARE_PATTERN, examples, description });
/** A longer wait is a typo, and far beyond it the hub's date arithmetic overflows. */
export const MAX_ROLLOUT_DURATION = '30d';
const Duration = (description: string) => Type.String({ pattern: DURATION_PATTERN, examples: DURATION_EXAMPLES, description: `${description}; at most ${MAX_ROLLOUT_DURATION}` });

/** DEFAULT_ROLLOUT.gateMinRequests (declared before it: the schema's description names it). */
const DEFAULT_GATE_MIN_REQUESTS = 20;

/** A share of requests, at most 100%: `1%`, `0.5%`. */
export const ERROR_RATE_PATTERN = '^(?:100(?:\\.0+)?|[1-9]?[0-9](?:\\.[0-9]+)?)%$';
/**
 * `METRIC OP NUMBER`, e.g. `accuracy>=0.9`, `mae<=0.4`. The names are hub/evaluation/metrics.ts's
 * EVAL_METRIC_NAMES (a unit test holds the two together): a pattern is what the schema can carry.
 */
export const GATE_METRIC_PATTERN = '^(accuracy|mae|rmse)(>=|<=|>|<)(-?[0-9]+(?:\\.[0-9]+)?)$';
// The CLI checks its flags with these too.
export { JSON_POINTER_PATTERN, pointerProblem };
/**
 * The p95 of merged histograms is known only up to the last finite bucket bound (10s): a threshold
 * at or above it could never be crossed.
 */
export const MAX_GATE_P95_MS = LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
/** The gates, in the order they are checked and shown. */
export const ROLLOUT_GATE_NAMES = ['error-rate', 'p95', 'p95-ratio', 'metric'] as const;
export type RolloutGateName = (typeof ROLLOUT_GATE_NAMES)[number];

/**
 * Thresholds a batch must meet after its soak, from the telemetry of exactly the devices it moved
 * (each since it became healthy on the new revision) and, for `metric`, the labels that came back
 * for their answers. A breach aborts the rollout and rolls it back.
 */
export const RolloutGates = Type.Object(
  {
    errorRate: Type.Optional(Type.String({ pattern: ERROR_RATE_PATTERN, examples: ['1%', '0.5%'], description: 'highest share of 5xx answers on the new revision' })),
    p95: Type.Optional(Type.String({ pattern: DURATION_PATTERN, examples: ['250ms', '1s'], description: 'highest p95 latency on the new revision' })),
    p95Ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000, examples: [1.5], description: "highest p95 of the new revision over the old revision's, on the devices still running it in the same window" })),
    minRequests: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: `requests (labelled answers for metric) a gate needs before it judges; below it the gate waits, up to the device timeout, then fails; default ${DEFAULT_GATE_MIN_REQUESTS}` })),
    metric: Type.Optional(Type.String({ pattern: GATE_METRIC_PATTERN, examples: ['accuracy>=0.9', 'mae<=0.4'], description: 'a model metric over the labels sent back for the new revision\'s answers' })),
    metricOutput: Type.Optional(Type.String({ pattern: JSON_POINTER_PATTERN, maxLength: MAX_JSON_POINTER_LENGTH, examples: ['/y', '/predictions/0/label'], description: 'RFC 6901 JSON pointer to the answer\'s field the metric compares with the label; required with metric' })),
  },
  { additionalProperties: false },
);
export type RolloutGates = Static<typeof RolloutGates>;

/** What a caller may give; every field has a default (see DEFAULT_ROLLOUT). */
export const RolloutRequest = Type.Object(
  {
    strategy: Type.Optional(stringEnum(ROLLOUT_STRATEGIES, { description: 'default all-at-once' })),
    batchSize: Type.Optional(Share('devices per batch (batches, and canary after its first batch); default 25%', ['2', '25%'])),
    canary: Type.Optional(Share('the canary batch (at least one device); default 10%', ['1', '10%'])),
    soak: Type.Optional(Duration('how long a healthy canary (or each batch, for batches) runs before the rollout goes on; default 60s for canary, 0s for batches')),
    maxUnavailable: Type.Optional(Share('devices moving (not yet healthy) at once; default the whole batch', ['1', '50%'])),
    deviceTimeout: Type.Optional(Duration('a device online this long without reaching healthy counts as failed (one that reported a failure is retried by its agent until then; a rejected one fails at once); default 10m')),
    maxFailures: Type.Optional(Share('failed devices the rollout tolerates; one more aborts it and rolls back; default 0 (100% for all-at-once)', ['0', '2', '5%'])),
    offlineWait: Type.Optional(Duration('how long a batch waits for a device that is offline before going on without it (it converges when back); default 0s')),
    gates: Type.Optional(RolloutGates),
  },
  { additionalProperties: false },
);
export type RolloutRequest = Static<typeof RolloutRequest>;

/** What JSON Schema cannot say about a rollout request (a duration's value), as `FIELD: problem`; null when fine. */
export function rolloutRequestProblem(request: RolloutRequest, field: string): string | null {
  for (const key of ['soak', 'deviceTimeout', 'offlineWait'] as const) {
    const text = request[key];
    if (text !== undefined && parseDuration(text) > parseDuration(MAX_ROLLOUT_DURATION)) return `${field}.${key}: must be at most ${MAX_ROLLOUT_DURATION}, not ${text}`;
  }
  const gates = request.gates;
  if (gates) {
    if (!ROLLOUT_GATE_FIELDS.some((k) => gates[k] !== undefined)) return `${field}.gates: give at least one of ${ROLLOUT_GATE_FIELDS.join(', ')}`;
    if (gates.metricOutput !== undefined && gates.metric === undefined) return `${field}.gates.metricOutput: only with gates.metric`;
    if (gates.metric !== undefined && gates.metricOutput === undefined) return `${field}.gates.metricOutput: required with gates.metric (the JSON pointer to the answer's field compared with the label, e.g. /y)`;
    if (gates.metricOutput !== undefined) {
      const problem = pointerProblem(gates.metricOutput);
      if (problem) return `${field}.gates.metricOutput: ${problem}`;
    }
    if (gates.p95 !== undefined && parseDuration(gates.p95) >= MAX_GATE_P95_MS) return `${field}.gates.p95: must be below ${MAX_GATE_P95_MS}ms (the latency histogram's last finite bound), not ${gates.p95}`;
  }
  return null;
}

/** The fields of RolloutGates that are gates (the others tune them), in ROLLOUT_GATE_NAMES order. */
export const ROLLOUT_GATE_FIELDS = ['errorRate', 'p95', 'p95Ratio', 'metric'] as const;

export const DEFAULT_ROLLOUT = {
  strategy: 'all-at-once',
  batchSize: '25%',
  canary: '10%',
  canarySoak: '60s',
  batchesSoak: '0s',
  deviceTimeout: '10m',
  maxFailures: '0',
  allAtOnceMaxFailures: '100%',
  offlineWait: '0s',
  gateMinRequests: DEFAULT_GATE_MIN_REQUESTS,
} as const;

/**
 * `completed-with-failures`: every batch went through, but some devices failed (within what
 * `maxFailures` tolerates); a rollout with a failed device never says `succeeded`.
 */
export const ROLLOUT_PHASES = ['running', 'paused', 'succeeded', 'completed-with-failures', 'aborted', 'superseded'] as const;
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number];
export const ACTIVE_ROLLOUT_PHASES: readonly RolloutPhase[] = ['running', 'paused'];
/** Ran to its last batch: its revision is the service's stable one. */
export const COMPLETED_ROLLOUT_PHASES: readonly RolloutPhase[] = ['succeeded', 'completed-with-failures'];

/** `retarget`: a new label selector; devices that newly match get the service, those that no longer match lose it. */
export const ROLLOUT_KINDS = ['create', 'update', 'retarget', 'rollback'] as const;

/**
 * Where one device is in a rollout; `pending` has not been moved yet (or has not reported since);
 * `retrying` reported a failure and is retried by its agent until its device timeout, when it
 * becomes `failed` unless it got healthy.
 */
export const ROLLOUT_DEVICE_PHASES = ['pending', 'pulling', 'starting', 'retrying', 'healthy', 'failed', 'rolled-back', 'offline'] as const;
export type RolloutDevicePhase = (typeof ROLLOUT_DEVICE_PHASES)[number];

export const RolloutDevice = Type.Object({
  id: Type.String(),
  batch: Type.Integer({ minimum: 0 }),
  phase: stringEnum(ROLLOUT_DEVICE_PHASES),
  /** The revision it served before the rollout moved it (null: none), and what it reports now. */
  previousRevision: Type.Union([Type.Integer(), Type.Null()]),
  movedAt: Type.Union([Timestamp, Type.Null()]),
  /** When it became healthy or failed (for a rollback: back on its old revision). */
  doneAt: Type.Union([Timestamp, Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
});
export type RolloutDevice = Static<typeof RolloutDevice>;

/**
 * A gate's last figures: `value` is the error rate (0–1), the p95 in ms, the p95 ratio, or the
 * metric; `baseline` the old revision's p95 on the devices still running it, same window (p95,
 * p95-ratio); `ok` null while it waits for `minRequests` (or for data at all).
 */
export const RolloutGate = Type.Object({
  name: stringEnum(ROLLOUT_GATE_NAMES),
  threshold: Type.String({ description: 'as given: 1%, 250ms, 1.5, accuracy>=0.9' }),
  value: Type.Union([Type.Number(), Type.Null()]),
  baseline: Type.Union([Type.Number(), Type.Null()]),
  /** Requests of the old revision the baseline is from (p95, p95-ratio). */
  baselineRequests: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Metric: labelled answers without a usable value at metricOutput (not a number, for mae/rmse): left out of `value` and `requests`. */
  misses: Type.Optional(Type.Integer({ minimum: 0 })),
  ok: Type.Union([Type.Boolean(), Type.Null()]),
  requests: Type.Integer({ minimum: 0, description: 'requests the value is from (labelled answers, for metric)' }),
  checkedAt: Timestamp,
  batch: Type.Integer({ minimum: 0, description: 'the batch (0-based) whose soak it checked' }),
});
export type RolloutGate = Static<typeof RolloutGate>;

export const Rollout = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  service: Type.String(),
  kind: stringEnum(ROLLOUT_KINDS),
  /** The revision this rollout moves devices to (a rollback: the revision they go back to; null: none). */
  revision: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  fromRevision: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  strategy: stringEnum(ROLLOUT_STRATEGIES),
  /** A retarget: the selector before and after (an abort puts `from` back). */
  target: Type.Optional(Type.Object({ from: Labels, to: Labels })),
  options: Type.Object({
    batchSize: Type.String(),
    canary: Type.String(),
    soak: Type.String(),
    maxUnavailable: Type.Union([Type.String(), Type.Null()]),
    deviceTimeout: Type.String(),
    maxFailures: Type.String(),
    offlineWait: Type.String(),
    /** As requested, with minRequests filled in; absent: no gates beyond device health. */
    gates: Type.Optional(RolloutGates),
  }),
  phase: stringEnum(ROLLOUT_PHASES, { description: 'running | paused | succeeded (every device healthy) | completed-with-failures (done, some devices failed: see reason) | aborted (rolled back) | superseded' }),
  /** Why it stopped (aborted, superseded, completed with failures), or why it exists (a rollback). */
  reason: Type.Union([Type.String(), Type.Null()]),
  batches: Type.Integer({ minimum: 0, description: 'how many batches' }),
  batch: Type.Integer({ minimum: 0, description: 'the batch in progress (0-based); equals `batches` when done' }),
  soakUntil: Type.Union([Timestamp, Type.Null()]),
  /** The rollout that rolled this one back, or the one this rollback undoes. */
  rolledBackBy: Type.Union([Type.Integer(), Type.Null()]),
  rollbackOf: Type.Union([Type.Integer(), Type.Null()]),
  counts: Type.Record(Type.String(), Type.Integer(), { description: 'devices per phase' }),
  /** Share of targeted devices done (healthy, failed or rolled back), 0–1. */
  progress: Type.Number({ minimum: 0, maximum: 1 }),
  devices: Type.Array(RolloutDevice),
  /** Each gate's last figures (empty without gates, or before the first batch's soak ended); always given by this hub. */
  gates: Type.Array(RolloutGate),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  finishedAt: Type.Union([Timestamp, Type.Null()]),
});
export type Rollout = Static<typeof Rollout>;

export const RolloutList = Type.Object({ rollouts: Type.Array(Type.Omit(Rollout, ['devices'])) });
export type RolloutList = Static<typeof RolloutList>;
