/**
 * One retraining run, step by step: labelled rows (and base datasets) → a stable train/eval split
 * in JSONL files → the current model laid out → the trainer → the candidate registered with its
 * lineage → the candidate's scoring image → both images scored on the eval split → promoted
 * (rolled out with the job's rollout and gates) or rejected with the numbers.
 *
 * Everything the run touches is behind `RunPorts`, so the order and the decisions are tested with
 * fakes; hub/retraining/ports.ts binds the real modules.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabelledExportLine } from '../../shared/api/datasets.js';
import type { Lineage, ModelVersion } from '../../shared/api/models.js';
import type { RolloutRequest } from '../../shared/api/rollouts.js';
import { MAX_EVAL_ROWS, type EvalMetricName, type RunStage } from '../../shared/api/retraining.js';
import { parseDuration } from '../../shared/duration.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { exportLine, type LabelledRow, type LabelledRowFilter } from '../datasets/labelled-data.js';
import { answeredByAll, metricOn, type RowPrediction } from '../evaluation/evaluate.js';
import { better } from '../evaluation/metrics.js';
import { parsePinnedRef } from '../registry/model-ref.js';
import type { ActorRecord, RetrainingJobRecord, RetrainingRunRecord } from '../store/store.js';
import type { TrainingRequest, TrainingResult } from '../training/training-runner.js';
import { datasetRowKey, inEvalSplit, splitPoint } from './split.js';

/**
 * The training runner's request as the pipeline makes it: the hub instance is the runner's own;
 * the runner's notes always go to the run's log.
 */
export type TrainingCall = Omit<TrainingRequest, 'instance'> & Required<Pick<TrainingRequest, 'note'>>;

export interface EvaluationCall {
  ref: string;
  rows: ReadonlyArray<{ input: unknown; label: unknown }>;
  pointer: string;
  metric: EvalMetricName;
  containerName: string;
  /** The job's limits: the candidate's model came from a trainer, and runs here like the trainer did. */
  memory: string;
  cpus: number;
  log: (line: string) => void;
  signal: AbortSignal;
}

export interface RunPorts {
  labelled: { rows(filter: LabelledRowFilter): AsyncIterable<LabelledRow> };
  datasets: {
    resolve(name: string, version: number): Promise<{ name: string; version: number; digest: string }>;
    rows(name: string, version: number): AsyncIterable<{ input: unknown; label: unknown }>;
  };
  /** `NAME` or `NAME:V` → the trainer version and its built image (`repository@digest`), once built. */
  trainer(ref: string, signal: AbortSignal): Promise<{ name: string; version: number; image: string }>;
  /** What the service runs now: its image (and the hub build it came from), models and last rollout. Undefined: not deployed. */
  deployment(service: string): Promise<DeployedService | undefined>;
  model(name: string, version: number): Promise<ModelVersion>;
  /** The version of `name` a run registered (its lineage names the job and run), if any. */
  registered(name: string, job: string, run: number): Promise<{ name: string; version: number } | undefined>;
  layOutModel(model: ModelVersion, dir: string): Promise<void>;
  runTraining(call: TrainingCall): Promise<TrainingResult>;
  /** Registers what the trainer wrote in `dir` as the next version of `name`, with this lineage. */
  registerCandidate(name: string, dir: string, lineage: Omit<Lineage, 'metrics' | 'runId' | 'dataset'> & { runId: string }, actor: ActorRecord): Promise<ModelVersion>;
  addLineageMetrics(model: { name: string; version: number }, metrics: Record<string, number>): Promise<void>;
  /** The service's image with `model` (NAME:V) in place of its namesake; resolves once built. */
  prepare(service: string, model: string, actor: ActorRecord, signal: AbortSignal): Promise<{ image: { id: number; ref: string | null } }>;
  /** `predictions`: one per call row, in order (`predicted` null: no usable answer). */
  evaluate(call: EvaluationCall): Promise<{ value: number; rows: number; failed: number; predictions: readonly RowPrediction[] }>;
  rollOut(service: string, imageId: number, rollout: RolloutRequest | undefined, actor: ActorRecord): Promise<{ rollout: { id: number } }>;
}

export interface DeployedService {
  image: string;
  build: number | null;
  models: ReadonlyArray<{ name: string; version: number }>;
  rollout: { id: number };
}

export interface RunContext {
  job: RetrainingJobRecord;
  run: RetrainingRunRecord;
  /** Empty, the run's own: the JSONL files, the laid-out model and the trainer's output go there. */
  workDir: string;
  /** Names containers: unique to this hub's data directory. */
  instance: string;
  /** A line of the trainer's output: dropped once the log is full. */
  log: (line: string) => void;
  /** One of the run's own lines (`edgeml: TEXT`): kept past the log's limit, as they say how the run went. */
  note: (text: string) => void;
  signal: AbortSignal;
  /** Stores a change of the run (stage, figures) so `retrain show` sees it. */
  update: (change: (run: RetrainingRunRecord) => void) => Promise<void>;
}

export type RunEnd = { status: 'promoted'; rollout: number } | { status: 'rejected'; reason: string };

function failed(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_RETRAINING_FAILED, message, cause === undefined ? {} : { cause });
}

/** The model a run replaces: the job's `--model`, else the service's only one. */
function currentModelRef(job: RetrainingJobRecord, models: ReadonlyArray<{ name: string; version: number }>): { name: string; version: number } {
  if (job.model !== null) {
    const named = models.find((m) => m.name === job.model);
    if (!named) throw failed(`service ${job.service} runs no model named ${job.model} (it runs ${models.map((m) => `${m.name}:${m.version}`).join(', ') || 'none'})`);
    return named;
  }
  if (models.length !== 1) throw failed(`service ${job.service} runs ${models.length} models: name the one to retrain with --model`);
  return models[0]!;
}

/** How the service differs from what a run evaluated against, or null when it runs that still. */
function serviceChange(before: DeployedService, now: DeployedService | undefined): string | null {
  if (now === undefined) return 'it is no longer deployed';
  if (now.image !== before.image || now.build !== before.build) return `it ran ${before.image} (build ${before.build ?? 'none'}), now ${now.image} (build ${now.build ?? 'none'})`;
  return null;
}

async function closeFile(file: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

function writeLine(file: WriteStream, row: unknown): Promise<void> | void {
  if (!file.write(`${JSON.stringify(row)}\n`)) return new Promise((resolve) => file.once('drain', () => resolve()));
}

interface EvalRow {
  input: unknown;
  label: unknown;
}

/** The `MAX_EVAL_ROWS` rows of lowest split point seen so far, held in at most twice that. */
class EvalSample {
  #rows: Array<EvalRow & { point: number }> = [];
  count = 0;

  add(point: number, row: EvalRow): void {
    this.count += 1;
    this.#rows.push({ point, input: row.input, label: row.label });
    if (this.#rows.length >= 2 * MAX_EVAL_ROWS) this.#trim();
  }

  rows(): EvalRow[] {
    this.#trim();
    return this.#rows.map(({ input, label }) => ({ input, label }));
  }

  #trim(): void {
    this.#rows = this.#rows.sort((a, b) => a.point - b.point).slice(0, MAX_EVAL_ROWS);
  }
}

interface Exported {
  trainFile: string;
  evalFile: string;
  /** Every eval row's count; `evalRows` holds at most `MAX_EVAL_ROWS` of them. */
  evalCount: number;
  evalRows: EvalRow[];
  train: number;
  labels: { since: string | null; until: string; count: number };
  datasets: Array<{ name: string; version: number; digest: string }>;
}

/** Writes both splits in the export format (`{requestId, time, device, model, input, output, label}`). */
async function exportRows(ports: RunPorts, ctx: RunContext, until: string): Promise<Exported> {
  const { job } = ctx;
  const trainFile = join(ctx.workDir, 'train.jsonl');
  const evalFile = join(ctx.workDir, 'eval.jsonl');
  const files = { train: createWriteStream(trainFile, { mode: 0o644 }), eval: createWriteStream(evalFile, { mode: 0o644 }) };
  const sample = new EvalSample();
  let train = 0;
  let since: string | null = null;
  let count = 0;
  const add = async (key: string, row: LabelledExportLine) => {
    ctx.signal.throwIfAborted();
    if (inEvalSplit(key, job.evalFraction)) {
      sample.add(splitPoint(key), row);
      await writeLine(files.eval, row);
    } else {
      train += 1;
      await writeLine(files.train, row);
    }
  };
  try {
    for await (const row of ports.labelled.rows({ service: job.service, labelled: true, until })) {
      count += 1;
      if (since === null || row.time < since) since = row.time;
      await add(row.requestId, exportLine(row));
    }
    const datasets: Exported['datasets'] = [];
    for (const ref of job.datasets) {
      const { name, version } = parsePinnedRef(ref);
      const resolved = await ports.datasets.resolve(name, version);
      datasets.push({ name: resolved.name, version: resolved.version, digest: resolved.digest });
      let index = 0;
      for await (const row of ports.datasets.rows(name, version)) {
        const key = datasetRowKey(name, version, index++);
        await add(key, exportLine({ requestId: key, time: until, device: null, model: null, input: row.input, output: null, label: row.label }));
      }
    }
    return { trainFile, evalFile, evalCount: sample.count, evalRows: sample.rows(), train, labels: { since, until, count }, datasets };
  } finally {
    await Promise.all([closeFile(files.train), closeFile(files.eval)]);
  }
}

async function stage(ctx: RunContext, name: RunStage, change: (run: RetrainingRunRecord) => void = () => undefined): Promise<void> {
  ctx.signal.throwIfAborted();
  ctx.note(name);
  await ctx.update((run) => {
    run.stage = name;
    change(run);
  });
}

/** Runs the pipeline; throws on failure (an abort of `ctx.signal` throws its reason). */
export async function executeRun(ports: RunPorts, ctx: RunContext): Promise<RunEnd> {
  const { job, run } = ctx;
  const actor = run.createdBy ?? job.createdBy;
  const metric = job.evalMetric;

  await stage(ctx, 'exporting');
  const deployment = await ports.deployment(job.service);
  if (!deployment) throw failed(`service ${job.service} is not deployed`);
  const currentRef = currentModelRef(job, deployment.models);
  const current = await ports.model(currentRef.name, currentRef.version);
  // Up to when the run was queued, where the job's next label count (labelsSince) starts: no label
  // is both trained on here and counted toward the next run.
  const exported = await exportRows(ports, ctx, run.createdAt);
  const sampled = exported.evalRows.length < exported.evalCount ? ` (both models score ${exported.evalRows.length} of them, at most ${MAX_EVAL_ROWS})` : '';
  ctx.note(`${exported.labels.count} labelled rows, ${exported.train} to train on, ${exported.evalCount} to evaluate on${sampled}`);
  await ctx.update((r) => {
    r.current = { name: current.name, version: current.version };
    r.rows = { train: exported.train, eval: exported.evalCount, labels: exported.labels.count };
    r.labels = exported.labels;
  });
  if (exported.train === 0) throw failed('no rows to train on: send labels to the service (POST /v1/services/NAME/feedback on a gateway) or give --dataset');
  if (exported.evalCount === 0) throw failed(`no rows to evaluate on: the eval split (${job.evalFraction}) of ${exported.train} rows is empty`);

  await stage(ctx, 'training');
  const trainer = await ports.trainer(job.trainer, ctx.signal);
  const modelDir = join(ctx.workDir, 'model');
  const outputDir = join(ctx.workDir, 'output');
  await mkdir(modelDir);
  await mkdir(outputDir, { mode: 0o777 });
  await ports.layOutModel(current, modelDir);
  ctx.note(`training with ${trainer.name}:${trainer.version} (${trainer.image}) from ${current.name}:${current.version}`);
  const trained = await ports.runTraining({
    runId: `${ctx.instance}-${run.id}`,
    image: trainer.image,
    trainData: exported.trainFile,
    evalData: exported.evalFile,
    modelDir,
    outputDir,
    params: job.params,
    memory: job.memory,
    cpus: job.cpus,
    timeoutMs: parseDuration(job.timeout),
    log: ctx.log,
    note: ctx.note,
    signal: ctx.signal,
  });
  ctx.signal.throwIfAborted();
  if (trained.status !== 'succeeded') throw failed(`training ${trained.status}: ${trained.message}`);

  await stage(ctx, 'registering');
  const candidate = await ports.registerCandidate(
    current.name,
    outputDir,
    {
      runId: `${job.name}/${run.id}`,
      parent: { name: current.name, version: current.version },
      datasets: exported.datasets,
      labels: exported.labels,
      trainer: { name: trainer.name, version: trainer.version, image: trainer.image },
      job: job.name,
      run: run.id,
    },
    actor,
  );
  // Stored at once: a hub stopping from here on leaves a run that names its registered candidate.
  await ctx.update((r) => {
    r.candidate = { name: candidate.name, version: candidate.version };
  });
  ctx.note(`registered the candidate ${candidate.name}:${candidate.version} (${candidate.digest})`);
  if (candidate.digest === current.digest) {
    // The same files make the same image: the service update would refuse it as what runs already.
    const reason = `the candidate has the current model's files (${candidate.digest})`;
    ctx.note(`rejected: ${reason}`);
    return { status: 'rejected', reason };
  }

  await stage(ctx, 'building');
  const { image } = await ports.prepare(job.service, `${candidate.name}:${candidate.version}`, actor, ctx.signal);
  if (image.ref === null) throw failed(`the candidate's image ${image.id} has no reference`);
  ctx.note(`the candidate's image is build ${image.id} (${image.ref})`);

  await stage(ctx, 'evaluating', (r) => {
    r.image = image.id;
  });
  const evaluation = async (which: 'current' | 'candidate', ref: string) => {
    const result = await ports.evaluate({
      ref,
      rows: exported.evalRows,
      pointer: job.evalOutput,
      metric,
      containerName: `edgeml-eval-${ctx.instance}-${run.id}-${which}`,
      memory: job.memory,
      cpus: job.cpus,
      log: (line) => ctx.note(`${which}: ${line}`),
      signal: ctx.signal,
    });
    ctx.note(`${which} answered ${result.rows} of ${exported.evalRows.length} eval rows (${result.failed} without an answer)`);
    return result;
  };
  const before = await evaluation('current', deployment.image);
  const after = await evaluation('candidate', image.ref);
  // Both measured on the same rows: a row only one of them answered would tilt the comparison.
  const common = answeredByAll(before.predictions, after.predictions);
  if (common.length === 0) throw failed(`no eval row got a usable answer from both the current model and the candidate (of ${exported.evalRows.length})`);
  const value = { current: metricOn(metric, before.predictions, exported.evalRows, common), candidate: metricOn(metric, after.predictions, exported.evalRows, common) };
  ctx.note(`on the ${common.length} eval rows both answered: current ${metric} = ${value.current}, candidate ${metric} = ${value.candidate}`);
  await ports.addLineageMetrics(candidate, { [metric]: value.candidate, [`current.${metric}`]: value.current });
  await ctx.update((r) => {
    r.evaluation = {
      metric,
      current: value.current,
      candidate: value.candidate,
      minImprovement: job.minImprovement,
      rows: exported.evalRows.length,
      compared: common.length,
      failed: { current: before.failed, candidate: after.failed },
    };
  });

  // A candidate that answers fewer rows is not better, whatever its metric on the rows it answered.
  const unanswered = after.failed > before.failed ? `the candidate answered ${after.failed - before.failed} fewer eval rows than the current model (${after.failed} of ${exported.evalRows.length} without an answer)` : null;
  if (unanswered !== null || !better(metric, value.candidate, value.current, job.minImprovement)) {
    const reason = unanswered ?? `the candidate's ${metric} ${value.candidate} does not beat the current model's ${value.current}${job.minImprovement > 0 ? ` by ${job.minImprovement}` : ''}`;
    ctx.note(`rejected: ${reason}`);
    return { status: 'rejected', reason };
  }
  // Promoting replaces what runs now: only what the candidate was measured against.
  const now = await ports.deployment(job.service);
  const changed = serviceChange(deployment, now);
  if (changed !== null) {
    const reason = `the service changed during the run: ${changed}`;
    ctx.note(`rejected: ${reason}`);
    return { status: 'rejected', reason };
  }
  await stage(ctx, 'rolling-out');
  const deployed = await ports.rollOut(job.service, image.id, job.rollout ?? undefined, actor);
  ctx.note(`promoted: ${metric} ${value.current} → ${value.candidate}; rollout ${deployed.rollout.id}`);
  return { status: 'promoted', rollout: deployed.rollout.id };
}
