/**
 * Evaluation of a model as it would serve: its real scoring image runs on the hub's Docker (the
 * smoke test's mechanism) and scores every eval input, a few at a time; each answer's value at the
 * pointer is compared with the row's label. Rows whose input got no 200 answer, or whose answer
 * has nothing at the pointer, count as failed and stay out of the metric.
 */
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { startScoringContainer, type ScoringContainer } from '../builds/scoring-container.js';
import { computeMetric, pointerTokens, valueAt, type EvalMetric, type Pair } from './metrics.js';

export interface EvaluateRequest {
  /** `repository@sha256:…` */
  ref: string;
  platform: string;
  rows: ReadonlyArray<{ input: unknown; label: unknown }>;
  /** RFC 6901 pointer into each answer, e.g. `/y` or `/predictions/0/label`. */
  pointer: string;
  metric: EvalMetric;
  containerName: string;
  hubInstance: string;
  /** The whole evaluation: the start until healthy and every row. */
  timeoutMs: number;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
}

export interface EvaluateResult {
  metric: EvalMetric;
  value: number;
  /** Rows the metric counts. */
  rows: number;
  /** Rows with no usable answer. */
  failed: number;
}

/** Scoring requests in flight at once: the image's own default concurrency is small. */
export const EVAL_CONCURRENCY = 4;
/** Failures written to the log, so a broken image does not flood it. */
const LOGGED_FAILURES = 5;

function evaluationFailed(message: string, output?: string[]): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_EVALUATION_FAILED, message, output ? { details: { output } } : {});
}

function cancelled(): EdgemlError {
  return evaluationFailed('the evaluation was cancelled');
}

/** One row's predicted value, or why there is none. */
async function scoreRow(container: ScoringContainer, input: unknown, pointer: string, timeoutMs: number): Promise<{ predicted: unknown } | { error: string }> {
  const res = await container.score(input, timeoutMs);
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
  return predicted === undefined ? { error: `the answer has nothing at ${pointer}: ${text.slice(0, 200)}` } : { predicted };
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
    let failed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < req.rows.length) {
        if (signal?.aborted) throw cancelled();
        const left = deadline - Date.now();
        if (left <= 0) throw evaluationFailed(`not done within ${Math.round(req.timeoutMs / 1000)} s (${pairs.length + failed} of ${req.rows.length} rows scored)`);
        const row = req.rows[next++]!;
        const outcome = await scoreRow(container, row.input, pointer, left);
        if ('predicted' in outcome) {
          pairs.push({ predicted: outcome.predicted, label: row.label });
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
    return { metric: req.metric, value, rows: pairs.length, failed };
  } finally {
    await container.remove();
  }
}
