/**
 * `npm run bench [-- --quick] [--only a,b]`: every benchmark in turn (one at a time: they would
 * disturb each other), then one table of absolute figures and ratios to the peers. Each run is
 * appended to bench/results/results.jsonl (one JSON record per scenario) and its table written to
 * bench/results/latest.md with the date and the machine.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/machine.js';
import { runScenario, type Scenario, type ScenarioRecord } from './lib/scenario.js';
import { formatSummary } from './lib/table.js';
import { SCENARIOS } from './scenarios.js';

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

function pick(only: string | undefined): Scenario[] {
  if (!only) return SCENARIOS;
  const names = only.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) {
    process.stderr.write(`bench: no scenario ${unknown.join(', ')}; there are ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
    process.exit(2);
  }
  return SCENARIOS.filter((s) => names.includes(s.name));
}

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
const quick = values.quick ?? false;
const machine = await describeMachine();
const started = new Date();
const records: ScenarioRecord[] = [];
for (const scenario of pick(values.only)) {
  process.stderr.write(`bench: ${scenario.name} — ${scenario.title} (peer: ${scenario.peer})${quick ? ', quick' : ''}\n`);
  records.push(await runScenario(scenario, quick, machine));
}

const seconds = Math.round((Date.now() - started.getTime()) / 1000);
await mkdir(RESULTS, { recursive: true });
await appendFile(`${RESULTS}results.jsonl`, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
const summary = formatSummary(records, { startedAt: started.toISOString(), seconds, quick });
await writeFile(`${RESULTS}latest.md`, summary);
process.stdout.write(`${summary}\n`);
process.exitCode = records.some((r) => r.error) ? 1 : 0;
