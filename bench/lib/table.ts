/** The results tables: per scenario, absolute figures and edgeml's ratio to the peer with which way is better. */
import { machineLine } from './machine.js';
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
  return `${r < 0.01 ? r.toPrecision(1) : r.toFixed(2)}× (${row.better} is better)`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** One markdown table per scenario, headed by its title and peer; a failed scenario shows its error. */
export function formatTable(records: readonly ScenarioRecord[]): string {
  return records
    .map((r) => {
      const head = `### ${r.scenario}: ${r.title}\n\nPeer: ${r.peer}. ${Math.round(r.seconds)} s.\n`;
      if (r.error) return `${head}\n**Failed:** ${cell(r.error.split('\n')[0]!)}\n`;
      const lines = ['| metric | edgeml | peer | edgeml / peer |', '|---|---:|---:|---|'];
      for (const row of r.rows) {
        const metric = `${row.metric} (${row.unit})${row.note ? ` — ${row.note}` : ''}`;
        lines.push(`| ${cell(metric)} | ${figure(row.edgeml)} | ${figure(row.peer)} | ${ratioText(row)} |`);
      }
      return `${head}\n${lines.join('\n')}\n`;
    })
    .join('\n');
}

/** The whole summary: the date, the machine, how to read it, and the tables. */
export function formatSummary(records: readonly ScenarioRecord[], run: { startedAt: string; seconds: number; quick: boolean }): string {
  const machine = records[0]?.machine;
  const on = machine ? `, on ${machineLine(machine)}` : '';
  return `# edgeml benchmarks\n\n${run.startedAt.slice(0, 10)}${run.quick ? ' (--quick)' : ''}, ${run.seconds} s${on}.\nRatios are edgeml / peer, measured side by side in the same run (bench/README.md explains each scenario).\n\n${formatTable(records)}`;
}
