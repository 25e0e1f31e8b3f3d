/**
 * CLI start-up (issue 19): wall time of whole `edgeml` processes — `--version`, `--help`, and
 * `model list` against a real local hub it starts (bin/edgeml from dist/, on loopback) — beside
 * `node -e 0`, the floor any Node command pays; `model list` also from the compiled tree
 * (dist/cli/bin.js), what runs when the client bundle is missing or stale. Runs alternate (the command, then node -e 0) after
 * one warm-up each, so drift on a shared machine hits both; the table shows medians and their ratio.
 *
 *   npm run build && npx tsx bench/cli-startup.ts [--quick]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from '../test/helpers/cli.js';
import { EDGEML_BIN } from '../test/helpers/edgeml-process.js';
import { entryFor } from '../cli/entry.js';
import { startHub } from './lib/hub.js';
import { runStandalone, type Row, type Scenario, type ScenarioContext } from './lib/scenario.js';
import { median } from './lib/stats.js';

/** Wall seconds of one whole process; it must exit 0. */
function timeRun(args: readonly string[], env: NodeJS.ProcessEnv): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().trim()}`);
  return seconds;
}

/** Medians of the command and of `node -e 0`, run in turn `runs` times after a warm-up each. */
function paired(args: readonly string[], env: NodeJS.ProcessEnv, runs: number): { edgeml: number; node: number } {
  timeRun(args, env);
  timeRun(['-e', '0'], env);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(timeRun(args, env));
    b.push(timeRun(['-e', '0'], env));
  }
  return { edgeml: median(a), node: median(b) };
}

async function run(ctx: ScenarioContext): Promise<{ rows: Row[]; details: Record<string, unknown> }> {
  const runs = ctx.quick ? 5 : 15;
  const distCli = new URL('../dist/cli/', import.meta.url);
  // What bin/edgeml runs for a client command: the bundle unless `npm run build` was not run since tsc.
  const bundled = entryFor(['model', 'list'], distCli).href !== new URL('bin.js', distCli).href;
  if (!bundled) ctx.log('no fresh client bundle in dist/cli: bin/edgeml runs the compiled tree (run `npm run build`)');
  const data = await mkdtemp(join(tmpdir(), 'edgeml-bench-cli-'));
  const hub = await startHub({ data });
  try {
    const env = { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey };
    const cases: [metric: string, args: string[]][] = [
      ['edgeml --version', [EDGEML_BIN, '--version']],
      ['edgeml --help', [EDGEML_BIN, '--help']],
      ['edgeml model list (local hub)', [EDGEML_BIN, 'model', 'list']],
      ['edgeml model list (local hub), compiled tree', [fileURLToPath(new URL('bin.js', distCli)), 'model', 'list']],
    ];
    const rows: Row[] = [];
    const medians: Record<string, { edgeml: number; node: number }> = {};
    for (const [metric, args] of cases) {
      ctx.log(`${metric}: ${runs} runs beside node -e 0`);
      const m = (medians[metric] = paired(args, env, runs));
      rows.push({ metric: `${metric}, median wall`, unit: 's', edgeml: m.edgeml, peer: m.node, better: 'lower' });
    }
    return { rows, details: { runs, bundled, medians } };
  } finally {
    await hub.stop();
    await rm(data, { recursive: true, force: true });
  }
}

export const scenario: Scenario = {
  name: 'cli-startup',
  title: 'CLI start-up: whole edgeml processes (--version, --help, model list against a local hub)',
  peer: 'node -e 0 (the same node binary doing nothing)',
  run,
};

if (process.argv[1] === fileURLToPath(import.meta.url)) await runStandalone(scenario);
