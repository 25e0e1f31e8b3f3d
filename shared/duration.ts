/** Human durations in flags and config: `500ms`, `10s`, `5m`, `1h`, `2d`. */
export const DURATION_EXAMPLES = ['500ms', '10s', '5m', '1h'];
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$';

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) throw new Error(`${JSON.stringify(value)} is not a duration (like 500ms, 10s, 5m, 1h)`);
  return Math.round(Number(m[1]) * unitMs[m[2]!]!);
}
