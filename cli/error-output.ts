/**
 * How a failed command reports itself on stderr: one line of text, or with `--json` one line
 * `{"error":{"code","message"}}`. A stack trace is for unexpected errors only, and only when asked
 * for (`--debug`, EDGEML_DEBUG=1): an expected condition (bad input, hub unreachable, TLS) never shows one.
 */
import { ErrorCodes, isEdgemlError } from '../shared/errors.js';

export interface ErrorStyle {
  json: boolean;
  debug: boolean;
}

/** The text for stderr, ending with a newline. */
export function renderError(err: unknown, style: ErrorStyle): string {
  const expected = isEdgemlError(err);
  const code = expected ? err.code : ErrorCodes.INTERNAL;
  const raw = err instanceof Error ? err.message : String(err);
  const message = expected ? raw : `internal error: ${raw}${style.debug ? '' : ' (run with --debug or EDGEML_DEBUG=1 for the stack trace)'}`;
  const stack = !expected && style.debug && err instanceof Error && err.stack ? err.stack : undefined;
  if (style.json) return `${JSON.stringify({ error: { code, message, ...(stack ? { stack } : {}) } })}\n`;
  return `edgeml: ${message} [${code}]\n${stack ? `${stack}\n` : ''}`;
}

/** `{"error":…}` for a message commander produced (usage errors), which arrives as `error: …\n`. */
export function renderUsageError(text: string, json: boolean): string {
  if (!json) return text;
  const message = text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
  return `${JSON.stringify({ error: { code: ErrorCodes.CLI_INPUT_INVALID, message } })}\n`;
}

/** Whether the command line asks for JSON output (before a `--` that ends the options). */
export function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

export function wantsDebug(args: readonly string[], env: Record<string, string | undefined>): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--debug') || env.EDGEML_DEBUG === '1';
}
