/** The results table: absolute figures, and edgeml's ratio to the peer with which way is better. */
import type { Row, ScenarioRecord } from './scenario.js';

/** edgeml / peer, or null when there is nothing to divide by. */
export function ratioOf(row: Pick<Row, 'edgeml' | 'peer'>): number | null {
  return row.peer === null || row.peer === 0 ? null : row.edgeml / row.peer;
}

function figure(n: number | null): string {
  if (n === null) return '–';
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const abs = Math.abs(n);
  return abs >= 100 ? Math.round(n).toLocaleString('en-US') : abs >= 1 ? n.toFixed(2) : n.toPrecision(2);
}

function ratioText(row: Row): string {
  const r = ratioOf(row);
  if (r === null) return '–';
  return `${r.toFixed(2)}× (${row.better} is better)`;
}

/** A markdown table of every row of every record; a failed scenario shows its error. */
export function formatTable(records: readonly ScenarioRecord[]): string {
  const lines = ['| scenario | metric | edgeml | peer | edgeml / peer | peer is |', '|---|---|---:|---:|---|---|'];
  for (const r of records) {
    if (r.error) {
      lines.push(`| ${r.scenario} | **failed**: ${r.error.replace(/\|/g, '\\|').split('\n')[0]} | | | | ${r.peer} |`);
      continue;
    }
    for (const row of r.rows) {
      const metric = `${row.metric} (${row.unit})${row.note ? ` — ${row.note}` : ''}`;
      lines.push(`| ${r.scenario} | ${metric} | ${figure(row.edgeml)} | ${figure(row.peer)} | ${ratioText(row)} | ${r.peer} |`);
    }
  }
  return lines.join('\n');
}
