/**
 * The rollout flags `deploy` and `service update` share: strategy, batch and canary sizes, soak,
 * timeouts and the abort threshold. Validated here with the same patterns as the hub's schema.
 */
import type { Command } from 'commander';
import { ROLLOUT_STRATEGIES, SHARE_PATTERN, type RolloutRequest, type RolloutStrategy } from '../../shared/api/rollouts.js';
import { DURATION_PATTERN } from '../../shared/duration.js';
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
}

const matching = (flag: string, pattern: string, example: string) => (text: string) => {
  if (!new RegExp(pattern).test(text)) throw inputError(`${flag} ${JSON.stringify(text)}: expected e.g. ${example}`);
  return text;
};

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
    .option('--offline-wait <duration>', 'how long a batch waits for an offline device (default 0s: it converges when back)', duration('--offline-wait'));
}

/** Only what was given: the hub fills in the defaults, so they live in one place. */
export function rolloutRequest(flags: RolloutFlags): RolloutRequest | undefined {
  const keys = ['strategy', 'batchSize', 'canary', 'soak', 'maxUnavailable', 'deviceTimeout', 'maxFailures', 'offlineWait'] as const;
  const given = Object.fromEntries(keys.filter((k) => flags[k] !== undefined).map((k) => [k, flags[k]]));
  return Object.keys(given).length ? (given as RolloutRequest) : undefined;
}
