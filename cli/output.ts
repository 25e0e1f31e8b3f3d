/**
 * What client commands print. A command produces one result; `--json` prints it as exactly one JSON
 * document on stdout (scripts parse it), otherwise a human rendering. Progress bars go to stderr so
 * they never mix into either.
 */

export interface Output {
  readonly json: boolean;
  /** Prints `data` as JSON, or `human()` as text. */
  result(data: unknown, human: () => string): void;
}

export interface Writer {
  write(text: string): unknown;
}

export function createOutput(opts: { json: boolean; stdout: Writer }): Output {
  return {
    json: opts.json,
    result(data, human) {
      opts.stdout.write(opts.json ? `${JSON.stringify(data, null, 2)}\n` : ensureNewline(human()));
    },
  };
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** The first 12 hex digits, as `docker images` shows image ids. */
export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** `2024-05-01T12:34:56.789Z` → `2024-05-01 12:34Z`: minutes are enough in a table, and UTC says so. */
export function formatTime(iso: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(iso);
  return m ? `${m[1]} ${m[2]}Z` : iso;
}

export function formatPairs(record: Record<string, string | number>): string {
  const pairs = Object.entries(record).map(([k, v]) => `${k}=${v}`);
  return pairs.length ? pairs.join(',') : '-';
}

export function formatList(items: readonly string[]): string {
  return items.length ? items.join(',') : '-';
}

/** Left-aligned columns separated by two spaces; an empty table says so instead of printing a bare header. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], empty = '(none)'): string {
  if (rows.length === 0) return `${empty}\n`;
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[headers, ...rows].map(line).join('\n')}\n`;
}

/** `label:  value` lines with the values aligned; entries whose value is undefined are left out. */
export function renderFields(fields: readonly (readonly [label: string, value: string | undefined])[]): string {
  const shown = fields.filter((f): f is readonly [string, string] => f[1] !== undefined);
  const width = Math.max(0, ...shown.map(([label]) => label.length + 1));
  return `${shown.map(([label, value]) => `${`${label}:`.padEnd(width)}  ${value}`).join('\n')}\n`;
}
