/**
 * The rollout flags every command that rolls something out shares: strategy, batch and canary
 * sizes, soak, timeouts, the abort threshold and the gates. Validated here with the same patterns
 * as the hub's schema.
 */
import type { Command } from 'commander';
import {
  ERROR_RATE_PATTERN,
  GATE_METRIC_PATTERN,
  JSON_POINTER_PATTERN,
  MAX_GATE_P95_MS,
  pointerProblem,
  ROLLOUT_STRATEGIES,
  SHARE_PATTERN,
  type RolloutGates,
  type RolloutRequest,
  type RolloutStrategy,
} from '../../shared/api/rollouts.js';
import { DURATION_PATTERN, parseDuration } from '../../shared/duration.js';
import { inputError } from '../args.js';

export interface RolloutFlags {
  strategy?: RolloutStrategy;
  batchSize?: string;
  canary?: string;
  soak?: string;
  maxUnavailable?: string;
  deviceTimeout?: string;
  maxFailures?: string;
  offlineWait?: string;
  gateErrorRate?: string;
  gateP95?: string;
  gateP95Ratio?: number;
  gateMinRequests?: number;
  gateMetric?: string;
  gateOutput?: string;
}

const matching = (flag: string, pattern: string, example: string) => (text: string) => {
  if (!new RegExp(pattern).test(text)) throw inputError(`${flag} ${JSON.stringify(text)}: expected e.g. ${example}`);
  return text;
};

const positive = (flag: string, whole: boolean) => (text: string) => {
  const n = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || n <= 0 || (whole && !Number.isInteger(n))) throw inputError(`${flag} ${JSON.stringify(text)}: expected ${whole ? 'a whole number ≥ 1' : 'a number > 0, e.g. 1.5'}`);
  return n;
};

function gateP95(text: string): string {
  matching('--gate-p95', DURATION_PATTERN, '250ms')(text);
  // The latency histogram ends at this bound: a p95 above it reads as the bound, never as a breach.
  if (parseDuration(text) >= MAX_GATE_P95_MS) throw inputError(`--gate-p95 ${JSON.stringify(text)}: must be below ${MAX_GATE_P95_MS}ms, the latency histogram's last finite bound`);
  return text;
}

function gateOutput(text: string): string {
  matching('--gate-output', JSON_POINTER_PATTERN, '/y or /predictions/0/label')(text);
  const problem = pointerProblem(text);
  if (problem) throw inputError(`--gate-output: ${problem}`);
  return text;
}

function parseStrategy(text: string): RolloutStrategy {
  if (!(ROLLOUT_STRATEGIES as readonly string[]).includes(text)) throw inputError(`--strategy ${JSON.stringify(text)}: expected one of ${ROLLOUT_STRATEGIES.join(', ')}`);
  return text as RolloutStrategy;
}

export function addRolloutOptions(command: Command): Command {
  const share = (flag: string) => matching(flag, SHARE_PATTERN, '2 or 25%');
  const duration = (flag: string) => matching(flag, DURATION_PATTERN, '60s or 10m');
  return command
    .option('--strategy <name>', `how devices get it: ${ROLLOUT_STRATEGIES.join(' | ')} (default all-at-once)`, parseStrategy)
    .option('--batch-size <n|p%>', 'devices per batch (batches; canary after the canary) (default 25%)', share('--batch-size'))
    .option('--canary <n|p%>', 'the canary batch, at least one device (default 10%)', share('--canary'))
    .option('--soak <duration>', 'how long a healthy canary (or each batch) runs before the rollout goes on (default 60s for canary)', duration('--soak'))
    .option('--max-unavailable <n|p%>', 'devices moving at once within a batch (default: the whole batch)', share('--max-unavailable'))
    .option('--device-timeout <duration>', 'an online device not healthy by then counts as failed (default 10m)', duration('--device-timeout'))
    .option('--max-failures <n|p%>', 'failed devices tolerated; one more aborts and rolls back (default 0; 100% for all-at-once)', share('--max-failures'))
    .option('--offline-wait <duration>', 'how long a batch waits for an offline device (default 0s: it converges when back)', duration('--offline-wait'))
    .option('--gate-error-rate <p%>', 'after each batch\'s soak: abort and roll back if the moved devices answer more 5xx than this (e.g. 1%)', matching('--gate-error-rate', ERROR_RATE_PATTERN, '1%'))
    .option('--gate-p95 <duration>', `abort and roll back if the new revision's p95 latency is above this (e.g. 250ms; below ${MAX_GATE_P95_MS}ms)`, gateP95)
    .option('--gate-p95-ratio <x>', 'abort and roll back if the new revision\'s p95 is above x times the old revision\'s (devices not moved yet)', positive('--gate-p95-ratio', false))
    .option('--gate-min-requests <n>', 'requests (labelled answers for --gate-metric) a gate needs to judge; it waits for them up to the device timeout, then fails (default 20)', positive('--gate-min-requests', true))
    .option('--gate-metric <metric>', 'abort and roll back unless the labels sent back for the new revision\'s answers give e.g. accuracy>=0.9 (accuracy, mae, rmse)', matching('--gate-metric', GATE_METRIC_PATTERN, 'accuracy>=0.9 or mae<=0.5'))
    .option('--gate-output <json-pointer>', 'the answer\'s field --gate-metric compares with the label, e.g. /y (required with --gate-metric)', gateOutput);
}

const GATE_FLAGS = { errorRate: 'gateErrorRate', p95: 'gateP95', p95Ratio: 'gateP95Ratio', minRequests: 'gateMinRequests', metric: 'gateMetric', metricOutput: 'gateOutput' } as const;

/** Only what was given: the hub fills in the defaults, so they live in one place. */
export function rolloutRequest(flags: RolloutFlags): RolloutRequest | undefined {
  const keys = ['strategy', 'batchSize', 'canary', 'soak', 'maxUnavailable', 'deviceTimeout', 'maxFailures', 'offlineWait'] as const;
  const given: Record<string, unknown> = Object.fromEntries(keys.filter((k) => flags[k] !== undefined).map((k) => [k, flags[k]]));
  const gates = Object.fromEntries(Object.entries(GATE_FLAGS).filter(([, flag]) => flags[flag] !== undefined).map(([field, flag]) => [field, flags[flag]])) as RolloutGates;
  if (Object.keys(gates).length) {
    if (gates.errorRate === undefined && gates.p95 === undefined && gates.p95Ratio === undefined && gates.metric === undefined) {
      throw inputError('--gate-min-requests and --gate-output tune gates: give one of --gate-error-rate, --gate-p95, --gate-p95-ratio, --gate-metric');
    }
    if (gates.metricOutput !== undefined && gates.metric === undefined) throw inputError('--gate-output is the field --gate-metric reads: give --gate-metric too');
    if (gates.metric !== undefined && gates.metricOutput === undefined) throw inputError('--gate-metric needs --gate-output: the JSON pointer to the answer\'s field compared with the label, e.g. /y');
    given.gates = gates;
  }
  return Object.keys(given).length ? (given as RolloutRequest) : undefined;
}
