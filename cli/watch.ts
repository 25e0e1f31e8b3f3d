/**
 * `--watch` on list commands: fetch, show, wait `--interval`, again, until Ctrl-C (which ends it with
 * exit 0: stopping is how a watch ends). Text output redraws the screen on a terminal (a header and
 * the table, like watch(1)); with `--json` it prints one JSON document per line, only when the data
 * changed (NDJSON), so a script can follow the changes. A fetch that fails for a passing reason (hub
 * unreachable, 5xx, 429) is said on stderr and the watch goes on; any other error ends it. The clock
 * and the wait are injected for tests.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Command } from 'commander';
import { DURATION_PATTERN, parseDuration } from '../shared/duration.js';
import { ErrorCodes, isEdgemlError } from '../shared/errors.js';
import { inputError } from './args.js';
import { renderError } from './error-output.js';
import type { Writer } from './output.js';
import type { ClientContext } from './commands/client-command.js';

export interface WatchFlags {
  watch?: boolean;
  interval?: number;
}

export const DEFAULT_WATCH_INTERVAL_MS = 2000;
const MIN_WATCH_INTERVAL_MS = 500;

export function parseWatchInterval(text: string): number {
  const ms = new RegExp(DURATION_PATTERN).test(text) ? parseDuration(text) : NaN;
  if (!(ms >= MIN_WATCH_INTERVAL_MS)) throw inputError(`--interval ${JSON.stringify(text)}: expected a duration of at least 500ms, e.g. 2s or 1m`);
  return ms;
}

export function withWatchOptions(command: Command): Command {
  return command
    .option('--watch', 'show the list again every --interval until Ctrl-C; with --json one JSON line per change')
    .option('--interval <duration>', 'how often --watch fetches the list (default 2s)', parseWatchInterval);
}

export interface WatchLoop<T> {
  fetch(): Promise<T>;
  render(data: T): string;
  json: boolean;
  stdout: Writer & { isTTY?: boolean };
  /** Where a passing failure is reported (one line, `{"error":…}` with --json) before the next round. */
  stderr: Writer;
  intervalMs: number;
  signal: AbortSignal;
  /** The command as typed, for the header. */
  title: string;
  now?: () => Date;
  /** Waits `ms`; rejects or resolves early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

const CLEAR_SCREEN = '\x1b[H\x1b[2J';

export async function watchLoop<T>(loop: WatchLoop<T>): Promise<void> {
  const now = loop.now ?? (() => new Date());
  const sleep = loop.sleep ?? ((ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined));
  let last: string | undefined;
  while (!loop.signal.aborted) {
    let data: T;
    try {
      data = await loop.fetch();
    } catch (err) {
      if (loop.signal.aborted) return; // Ctrl-C during a fetch
      if (!passing(err)) throw err;
      loop.stderr.write(renderError(err, { json: loop.json, debug: false }));
      await sleep(loop.intervalMs, loop.signal);
      continue;
    }
    if (loop.json) {
      const line = JSON.stringify(data);
      if (line !== last) loop.stdout.write(`${line}\n`);
      last = line;
    } else {
      const header = `Every ${loop.intervalMs / 1000}s: ${loop.title}    ${now().toISOString().replace(/\.\d+Z$/, 'Z')}\n\n`;
      loop.stdout.write(`${loop.stdout.isTTY ? CLEAR_SCREEN : ''}${header}${loop.render(data)}${loop.stdout.isTTY ? '' : '\n'}`);
    }
    await sleep(loop.intervalMs, loop.signal);
  }
}

/** A failure the next round may not meet: the hub restarting, overloaded, or the network down for a moment. */
function passing(err: unknown): boolean {
  return isEdgemlError(err) && (err.retryable || err.code === ErrorCodes.CLI_HUB_UNREACHABLE);
}

/** A list command's output: once, or with `--watch` until Ctrl-C. */
export async function showList<T>(ctx: ClientContext, flags: WatchFlags, title: string, fetch: () => Promise<T>, render: (data: T) => string): Promise<void> {
  if (flags.interval !== undefined && !flags.watch) throw inputError('--interval goes with --watch');
  if (!flags.watch) {
    const data = await fetch();
    ctx.out.result(data, () => render(data));
    return;
  }
  await watchLoop({ fetch, render, json: ctx.out.json, stdout: ctx.io.stdout, stderr: ctx.io.stderr, intervalMs: flags.interval ?? DEFAULT_WATCH_INTERVAL_MS, signal: ctx.signal, title });
}
