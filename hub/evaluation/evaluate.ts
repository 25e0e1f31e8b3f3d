/**
 * Evaluation of a model as it would serve: its real scoring image runs on the hub's Docker (the
 * smoke test's mechanism) and scores every eval input, a few at a time; each answer's value at the
 * pointer is compared with the row's label. Rows whose input got no 200 answer, whose answer has
 * nothing (or null) at the pointer, or whose answer or label is not a number under mae/rmse, count
 * as failed and stay out of the metric. Each row's prediction is returned too, so a caller comparing
 * two models can measure both on the rows both answered (`answeredByAll`, `metricOn`).
 */
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { startScoringContainer, type ScoringContainer } from '../builds/scoring-container.js';
import { pointerTokens, valueAt } from '../../shared/json-pointer.js';
import type { EvalMetricName } from '../../shared/api/retraining.js';
import { computeMetric, pairProblem, type Pair } from './metrics.js';

export interface EvaluateRequest {
  /** `repository@sha256:…` */
  ref: string;
  platform: string;
  rows: ReadonlyArray<{ input: unknown; label: unknown }>;
  /** RFC 6901 pointer into each answer, e.g. `/y` or `/predictions/0/label`. */
  pointer: string;
  metric: EvalMetricName;
  containerName: string;
  hubInstance: string;
  /** The whole evaluation: the start until healthy and every row. */
  timeoutMs: number;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
  /** Docker's --memory for the container, e.g. `1g` (absent: no limit). */
  memory?: string | undefined;
  /** Docker's --cpus for the container (absent: no limit). */
  cpus?: number | undefined;
}

/** One eval row's value at the pointer; `predicted` is null when the row failed (no usable answer). */
export interface RowPrediction {
  /** The row's index in the request's `rows`. */
  index: number;
  predicted: unknown;
}

export interface EvaluateResult {
  metric: EvalMetricName;
  value: number;
  /** Rows the metric counts. */
  rows: number;
  /** Rows with no usable answer. */
  failed: number;
  /** One per request row, in the same order (`predictions[i].index === i`). */
  predictions: RowPrediction[];
}

/** Scoring requests in flight at once: the image's own default concurrency is small. */
const EVAL_CONCURRENCY = 4;
/** Failures written to the log, so a broken image does not flood it. */
const LOGGED_FAILURES = 5;

function evaluationFailed(message: string, output?: string[]): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_EVALUATION_FAILED, message, output ? { details: { output } } : {});
}

function cancelled(): EdgemlError {
  return evaluationFailed('the evaluation was cancelled');
}

/** The indexes of the rows every one of these prediction lists has a usable answer for. */
export function answeredByAll(...lists: ReadonlyArray<readonly RowPrediction[]>): number[] {
  const [first = [], ...rest] = lists;
  const usable = (list: readonly RowPrediction[]) => new Set(list.filter((p) => p.predicted !== null).map((p) => p.index));
  const others = rest.map(usable);
  return [...usable(first)].filter((index) => others.every((set) => set.has(index))).sort((a, b) => a - b);
}

/** The metric over the chosen rows' predictions (each must be usable: see `answeredByAll`). */
export function metricOn(metric: EvalMetricName, predictions: readonly RowPrediction[], rows: ReadonlyArray<{ label: unknown }>, indexes: readonly number[]): number {
  const byIndex = new Map(predictions.map((p) => [p.index, p.predicted]));
  return computeMetric(
    metric,
    indexes.map((index) => ({ predicted: byIndex.get(index) ?? null, label: rows[index]!.label })),
  );
}

/** One row's predicted value, or why there is none. */
async function scoreRow(container: ScoringContainer, row: { input: unknown; label: unknown }, pointer: string, metric: EvalMetricName, timeoutMs: number): Promise<{ predicted: unknown } | { error: string }> {
  const res = await container.score(row.input, timeoutMs);
  if (res instanceof Error) return { error: `no answer: ${res.message}` };
  const text = await res.text();
  if (res.status !== 200) return { error: `HTTP ${res.status}: ${text.slice(0, 200)}` };
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return { error: 'the answer is not JSON' };
  }
  const predicted = valueAt(answer, pointer);
  if (predicted === undefined || predicted === null) return { error: `the answer has ${predicted === null ? 'null' : 'nothing'} at ${pointer}: ${text.slice(0, 200)}` };
  const problem = pairProblem(metric, { predicted, label: row.label });
  return problem ? { error: problem } : { predicted };
}

export async function evaluateImage(req: EvaluateRequest): Promise<EvaluateResult> {
  const { log, signal, pointer } = req;
  pointerTokens(pointer);
  if (req.rows.length === 0) throw evaluationFailed('no eval rows to score');
  const deadline = Date.now() + req.timeoutMs;
  log(`evaluating ${req.ref} on ${req.rows.length} rows (${req.metric} of the answer at ${pointer})`);
  const started = await startScoringContainer({ ...req, cancelled });
  if (!started.ok) throw evaluationFailed(`${req.ref} did not start: ${started.message}`, started.output);
  const { container } = started;
  try {
    const pairs: Pair[] = [];
    const predictions: RowPrediction[] = req.rows.map((_row, index) => ({ index, predicted: null }));
    let failed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < req.rows.length) {
        if (signal?.aborted) throw cancelled();
        const left = deadline - Date.now();
        if (left <= 0) throw evaluationFailed(`not done within ${Math.round(req.timeoutMs / 1000)} s (${pairs.length + failed} of ${req.rows.length} rows scored)`);
        const index = next++;
        const row = req.rows[index]!;
        const outcome = await scoreRow(container, row, pointer, req.metric, left);
        if ('predicted' in outcome) {
          pairs.push({ predicted: outcome.predicted, label: row.label });
          predictions[index]!.predicted = outcome.predicted;
        } else {
          failed += 1;
          if (failed <= LOGGED_FAILURES) log(`row failed: ${outcome.error}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(EVAL_CONCURRENCY, req.rows.length) }, worker));
    if (signal?.aborted) throw cancelled();
    if (pairs.length === 0) throw evaluationFailed(`none of the ${req.rows.length} eval rows got a usable answer from ${req.ref}`);
    const value = computeMetric(req.metric, pairs);
    log(`${req.metric} = ${value} over ${pairs.length} rows (${failed} failed)`);
    return { metric: req.metric, value, rows: pairs.length, failed, predictions };
  } finally {
    await container.remove();
  }
}
