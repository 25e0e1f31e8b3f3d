/**
 * What every benchmark is: a scenario that runs edgeml and a real peer side by side in one run and
 * returns rows of absolute figures; the runner (bench/run.ts) adds ratios, prints the table and
 * keeps the results. Each scenario file can also run alone (`runStandalone`).
 */
import { parseArgs } from 'node:util';
import { describeMachine, type MachineDescription } from './machine.js';
import { formatTable, ratioOf } from './table.js';
import { benchCores, type BenchCores } from './cores.js';

export interface ScenarioContext {
  /** Small counts and short durations: the whole `npm run bench -- --quick` stays under 5 minutes. */
  quick: boolean;
  /** Cores for the system under test and for the load generator (`taskset -c` lists). */
  cores: BenchCores;
  /** A progress line on stderr. */
  log(message: string): void;
}

export interface Row {
  /** What is measured, e.g. "requests/s (64 connections)". */
  metric: string;
  unit: string;
  edgeml: number;
  /** The peer's figure; null when the peer has no such figure. */
  peer: number | null;
  /** Which way is better, so the table can say whether a ratio is good. */
  better: 'higher' | 'lower';
  note?: string;
}

export interface ScenarioResult {
  rows: Row[];
  /** Anything else worth keeping in the JSON results (settings, raw counts). */
  details?: Record<string, unknown>;
}

export interface Scenario {
  /** File-name-like id, e.g. `gateway-overhead`. */
  name: string;
  title: string;
  /** The real peer it is compared with, e.g. `nginx 1.22 (Debian) as a reverse proxy`. */
  peer: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

export interface ScenarioRecord extends ScenarioResult {
  scenario: string;
  title: string;
  peer: string;
  quick: boolean;
  startedAt: string;
  seconds: number;
  machine: MachineDescription;
  error?: string;
}

export function stderrLog(name: string): (message: string) => void {
  return (message) => process.stderr.write(`[bench ${name} ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Runs one scenario, never throwing: a failed scenario is a record with its error and no rows. */
export async function runScenario(scenario: Scenario, quick: boolean, machine: MachineDescription): Promise<ScenarioRecord> {
  const started = Date.now();
  const base = { scenario: scenario.name, title: scenario.title, peer: scenario.peer, quick, startedAt: new Date(started).toISOString(), machine };
  const log = stderrLog(scenario.name);
  try {
    const result = await scenario.run({ quick, cores: benchCores(), log });
    return { ...base, ...result, seconds: (Date.now() - started) / 1000 };
  } catch (err) {
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    return { ...base, rows: [], seconds: (Date.now() - started) / 1000, error: (err as Error).message };
  }
}

/** `tsx bench/NAME.ts [--quick]`: one scenario, its table on stdout; exit 1 if it failed. */
export async function runStandalone(scenario: Scenario): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const record = await runScenario(scenario, values.quick ?? false, await describeMachine());
  process.stdout.write(`${formatTable([record])}\n`);
  process.exitCode = record.error ? 1 : 0;
}

export { ratioOf };
