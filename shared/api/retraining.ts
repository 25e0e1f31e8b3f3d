/**
 * Retraining jobs (`/api/v1/retraining`): what a job is told to do, and what each of its runs did.
 * A run exports the service's labelled data (plus base datasets), trains a candidate, evaluates
 * it against the current model with both scoring images, and promotes it or rejects it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { JSON_POINTER_PATTERN, MAX_JSON_POINTER_LENGTH } from '../json-pointer.js';
import { stringEnum } from '../schema.js';
import { DURATION_EXAMPLES, DURATION_PATTERN } from '../duration.js';
import { SIZE_EXAMPLES, SIZE_PATTERN } from '../size.js';
import { Actor, Name, Timestamp, Version } from './common.js';
import { ServiceName } from './deployments.js';
import { RolloutRequest } from './rollouts.js';

export const EVAL_METRIC_NAMES = ['accuracy', 'mae', 'rmse'] as const;
export type EvalMetricName = (typeof EVAL_METRIC_NAMES)[number];

/** `NAME` or `NAME:VERSION` (a trainer without a version: its latest). */
const TRAINER_REF_PATTERN = '^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?(?::[1-9][0-9]{0,8})?$';
const DATASET_REF_PATTERN = '^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?:[1-9][0-9]{0,8}$';

/**
 * Eval rows both images score, at most: the eval split's rows with the lowest split points, so
 * the same rows from run to run (the trainer's eval file has all of them).
 */
export const MAX_EVAL_ROWS = 10_000;

export const RETRAINING_DEFAULTS = { evalMetric: 'accuracy', evalOutput: '', evalFraction: 0.2, minImprovement: 0, timeout: '30m', memory: '1g', cpus: 1 } as const;

export const JobName = Type.String({ pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$', examples: ['linear-nightly'], description: 'lowercase letters, digits and `-`; 1–63 characters' });

export const RetrainingJobCreate = Type.Object(
  {
    name: JobName,
    service: ServiceName,
    trainer: Type.String({ pattern: TRAINER_REF_PATTERN, examples: ['linear-trainer', 'linear-trainer:2'] }),
    datasets: Type.Optional(Type.Array(Type.String({ pattern: DATASET_REF_PATTERN, examples: ['linear-base:1'] }), { maxItems: 16, uniqueItems: true })),
    schedule: Type.Optional(Type.String({ minLength: 9, maxLength: 128, examples: ['0 3 * * *'], description: 'node-cron expression: a run at each match' })),
    minNewLabels: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000, description: 'a run once this many labels arrived since the last run' })),
    evalMetric: Type.Optional(stringEnum(EVAL_METRIC_NAMES, { default: RETRAINING_DEFAULTS.evalMetric })),
    evalOutput: Type.Optional(Type.String({ pattern: JSON_POINTER_PATTERN, maxLength: MAX_JSON_POINTER_LENGTH, examples: ['/y', '/predictions/0/label'], description: 'JSON pointer into each answer compared with the label (default: the whole answer)' })),
    evalFraction: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: RETRAINING_DEFAULTS.evalFraction })),
    minImprovement: Type.Optional(Type.Number({ minimum: 0, default: RETRAINING_DEFAULTS.minImprovement, description: 'how much better (absolute) the candidate must be' })),
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'EDGEML_PARAMS of the trainer' })),
    model: Type.Optional(Name),
    timeout: Type.Optional(Type.String({ pattern: DURATION_PATTERN, examples: DURATION_EXAMPLES, default: RETRAINING_DEFAULTS.timeout })),
    memory: Type.Optional(Type.String({ pattern: SIZE_PATTERN, examples: SIZE_EXAMPLES, default: RETRAINING_DEFAULTS.memory })),
    cpus: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 64, default: RETRAINING_DEFAULTS.cpus })),
    rollout: Type.Optional(RolloutRequest),
  },
  { additionalProperties: false },
);
export type RetrainingJobCreate = Static<typeof RetrainingJobCreate>;

const RUN_TRIGGERS = ['manual', 'schedule', 'labels'] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];
const RUN_STATUSES = ['queued', 'running', 'promoted', 'rejected', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const ACTIVE_RUN_STATUSES: readonly RunStatus[] = ['queued', 'running'];
const RUN_STAGES = ['exporting', 'training', 'registering', 'building', 'evaluating', 'rolling-out'] as const;
export type RunStage = (typeof RUN_STAGES)[number];

const ModelRef = Type.Object({ name: Name, version: Version });

export const RetrainingRun = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  job: JobName,
  service: ServiceName,
  trigger: stringEnum(RUN_TRIGGERS),
  status: stringEnum(RUN_STATUSES),
  stage: Type.Union([stringEnum(RUN_STAGES), Type.Null()], { description: 'what a running run is doing; where a failed or cancelled one stopped' }),
  rows: Type.Union([Type.Object({ train: Type.Integer(), eval: Type.Integer(), labels: Type.Integer() }), Type.Null()]),
  labels: Type.Union([Type.Object({ since: Type.Union([Timestamp, Type.Null()]), until: Timestamp, count: Type.Integer() }), Type.Null()]),
  current: Type.Union([ModelRef, Type.Null()], { description: 'the model the service ran when the run started' }),
  candidate: Type.Union([ModelRef, Type.Null()], { description: 'the trained model, registered' }),
  image: Type.Union([Type.Integer(), Type.Null()], { description: "the candidate's scoring image (build id)" }),
  evaluation: Type.Union(
    [
      Type.Object({
        metric: stringEnum(EVAL_METRIC_NAMES),
        current: Type.Number(),
        candidate: Type.Number(),
        minImprovement: Type.Number(),
        rows: Type.Integer({ description: `eval rows both images scored: the eval split, or at most ${MAX_EVAL_ROWS} of it (the same ones from run to run)` }),
        compared: Type.Integer({ description: 'rows both models answered: both metrics are computed on these' }),
        failed: Type.Object({ current: Type.Integer(), candidate: Type.Integer() }),
      }),
      Type.Null(),
    ],
    { description: 'both models scored on the eval split' },
  ),
  rollout: Type.Union([Type.Integer(), Type.Null()], { description: 'the rollout that promoted the candidate' }),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'why it ended rejected, failed or cancelled' }),
  createdAt: Timestamp,
  startedAt: Type.Union([Timestamp, Type.Null()]),
  finishedAt: Type.Union([Timestamp, Type.Null()]),
  createdBy: Type.Union([Actor, Type.Null()], { description: 'null: a trigger started it' }),
  cancelledBy: Type.Optional(Type.Object(Actor.properties, { description: 'who asked to cancel it (absent: nobody)' })),
});
export type RetrainingRun = Static<typeof RetrainingRun>;

export const RetrainingJob = Type.Object({
  name: JobName,
  service: ServiceName,
  trainer: Type.String(),
  datasets: Type.Array(Type.String()),
  schedule: Type.Union([Type.String(), Type.Null()]),
  minNewLabels: Type.Union([Type.Integer(), Type.Null()]),
  evalMetric: stringEnum(EVAL_METRIC_NAMES),
  evalOutput: Type.String(),
  evalFraction: Type.Number(),
  minImprovement: Type.Number(),
  params: Type.Record(Type.String(), Type.Unknown()),
  model: Type.Union([Name, Type.Null()]),
  timeout: Type.String(),
  memory: Type.String(),
  cpus: Type.Number(),
  rollout: Type.Union([RolloutRequest, Type.Null()]),
  /** Labels from this time on count toward --min-new-labels: when the last run was queued (its export ends there), or the job's creation. */
  labelsSince: Timestamp,
  lastRun: Type.Union([RetrainingRun, Type.Null()]),
  createdAt: Timestamp,
  createdBy: Actor,
});
export type RetrainingJob = Static<typeof RetrainingJob>;

export const RetrainingJobList = Type.Object({ jobs: Type.Array(RetrainingJob) });
export type RetrainingJobList = Static<typeof RetrainingJobList>;
export const RetrainingRunList = Type.Object({ runs: Type.Array(RetrainingRun) });
export type RetrainingRunList = Static<typeof RetrainingRunList>;
export const RunLogQuery = Type.Object({ follow: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
