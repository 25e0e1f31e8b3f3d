/** Human durations in flags and config: `500ms`, `10s`, `5m`, `1h`, `2d`. */
export const DURATION_EXAMPLES = ['500ms', '10s', '5m', '1h'];
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration that already matched DURATION_PATTERN (config validation did that). */
export function parseDuration(text: string): number {
  const match = new RegExp(DURATION_PATTERN).exec(text);
  if (!match) throw new RangeError(`not a duration: ${text} (e.g. ${DURATION_EXAMPLES.join(', ')})`);
  return Math.round(Number.parseFloat(text) * UNIT_MS[match[2]!]!);
}
