/**
 * How a model's answers are compared with labels: the value at a JSON pointer in each answer
 * (RFC 6901) against the label, summed up as accuracy (share of exact matches) or as the mean
 * absolute or root mean squared error of numbers.
 */
import { isDeepStrictEqual } from 'node:util';
import type { EvalMetricName } from '../../shared/api/retraining.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

// The one list is the API's; these names stay for the hub's callers.

export interface Pair {
  predicted: unknown;
  label: unknown;
}

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });
}

const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/**
 * Why `pair` cannot count under `metric`, or null when it can: mae and rmse need a number on both
 * sides; accuracy compares any two values. Callers that score many rows count such a row as failed
 * instead of losing the whole measurement to it.
 */
export function pairProblem(metric: EvalMetricName, pair: Pair): string | null {
  if (metric === 'accuracy') return null;
  for (const [what, value] of [['the answer', pair.predicted], ['the label', pair.label]] as const) {
    if (!isNumber(value)) return `${what} ${JSON.stringify(value) ?? 'undefined'} is not a number: ${metric} compares numbers`;
  }
  return null;
}

function number(metric: EvalMetricName, pair: Pair): [number, number] {
  const problem = pairProblem(metric, pair);
  if (problem) throw invalid(problem);
  return [pair.predicted as number, pair.label as number];
}

/**
 * The metric over every pair; accuracy compares JSON values (a `"setosa"` answer matches a
 * `"setosa"` label, `1` matches `1`). No pairs is an error: there is nothing to measure; so is a
 * pair `pairProblem` refuses (leave those out first).
 */
export function computeMetric(metric: EvalMetricName, pairs: readonly Pair[]): number {
  if (pairs.length === 0) throw invalid(`no rows to compute ${metric} on`);
  if (metric === 'accuracy') return pairs.filter((p) => isDeepStrictEqual(p.predicted, p.label)).length / pairs.length;
  const errors = pairs.map((p) => {
    const [predicted, label] = number(metric, p);
    return predicted - label;
  });
  if (metric === 'mae') return errors.reduce((sum, e) => sum + Math.abs(e), 0) / errors.length;
  return Math.sqrt(errors.reduce((sum, e) => sum + e * e, 0) / errors.length);
}

/** Accuracy: higher is better; errors: lower is better. */
function higherIsBetter(metric: EvalMetricName): boolean {
  return metric === 'accuracy';
}

/** Whether `candidate` beats `current` by at least `minImprovement` (0: any strict improvement). */
export function better(metric: EvalMetricName, candidate: number, current: number, minImprovement: number): boolean {
  const gain = higherIsBetter(metric) ? candidate - current : current - candidate;
  return minImprovement > 0 ? gain >= minImprovement : gain > 0;
}
