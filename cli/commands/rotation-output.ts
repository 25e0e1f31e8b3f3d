/**
 * What every `rotate` command shares (device tokens, API keys, service keys): its `--grace`, and
 * the answer printed once: the new secret, and when the old one stops working.
 */
import type { Command } from 'commander';
import { DEFAULT_GRACE, MAX_KEY_GRACE } from '../../shared/api/rotations.js';
import { DURATION_PATTERN, parseDuration } from '../../shared/duration.js';
import { inputError } from '../args.js';

function parseGrace(text: string): string {
  if (!new RegExp(DURATION_PATTERN).test(text)) throw inputError(`--grace ${JSON.stringify(text)}: expected a duration, e.g. 10m, 1h or 0s`);
  if (parseDuration(text) > parseDuration(MAX_KEY_GRACE)) throw inputError(`--grace ${text}: at most ${MAX_KEY_GRACE}`);
  return text;
}

/** `what`: the secret, as the help names it ("token", "key"). */
export function addGraceOption(command: Command, what: string): Command {
  return command.option('--grace <duration>', `how long the old ${what} stays valid beside the new one, at most ${MAX_KEY_GRACE}; 0s: not at all`, parseGrace, DEFAULT_GRACE);
}

export function renderRotated(heading: string, secret: string, what: string, previousValidUntil: string | null): string {
  return [
    heading,
    '',
    `  ${secret}`,
    '',
    `This is the only time the ${what} is shown: store it now.`,
    previousValidUntil ? `The old ${what} works until ${previousValidUntil}, then only this one.` : `The old ${what} no longer works.`,
  ].join('\n');
}
