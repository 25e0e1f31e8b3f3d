/**
 * Fleet rollout benchmark with the FLEET SIMULATOR (bench/simulator/): starts a real hub (dist/, via
 * bin/edgeml) on loopback, enrolls and connects N simulated devices, deploys an image, then updates
 * it, and prints how long enrollment, connection and each rollout took until every device had
 * settled, from the simulator's side and from the hub's. Timing goals live here, never in tests.
 *
 *   npm run build && npm run bench:fleet -- --devices 1000 --rollout '{"strategy":"batches","batchSize":"10%"}'
 *
 * Options (or FLEET_SIM_<NAME> in the environment, e.g. FLEET_SIM_DEVICES=200):
 *   --devices N               simulated devices (default 1000)
 *   --pull-ms A..B            simulated pull time, uniform in [A, B] (default 1000..5000)
 *   --start-ms A..B           create + start (default 200..1000)
 *   --health-ms A..B          start until /health is 200 (default 500..2000)
 *   --pull-failures RATE      share of devices whose pull of the update fails (default 0)
 *   --health-failures RATE    share whose health check of the update fails (default 0)
 *   --seed N                  the draws (default 1)
 *   --rollout JSON            the `rollout` of both requests, when the hub takes one
 *   --enroll-concurrency N    enrollment requests in flight (default 8)
 *   --timeout SECONDS         the whole run, after which it fails (default 300)
 *
 * No peer runs beside it: there is no other rollout controller to compare with, so it prints
 * absolute figures. Failures are drawn for the update only (revision 2 and later), so the deploy
 * sets up a fleet that has something to roll back to.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFleet, type Fleet } from './simulator/fleet-simulator.js';
import type { DurationSpec } from './simulator/options.js';
import { rollout, seconds, type RolloutResult } from './lib/fleet.js';
import { call, startHub, type Hub } from './lib/hub.js';
import { processUsage, rssMb } from './lib/process-usage.js';

const SERVICE = 'bench';
const LABELS = { site: 'fleet-sim' };
const image = (hexDigit: string) => `127.0.0.1:5000/fleet-sim/bench@sha256:${hexDigit.repeat(64)}`;

interface Config {
  devices: number;
  pullMs: DurationSpec;
  startMs: DurationSpec;
  healthMs: DurationSpec;
  pullFailures: number;
  healthFailures: number;
  seed: number;
  rollout: Record<string, unknown> | null;
  enrollConcurrency: number;
  timeoutMs: number;
}

function readConfig(): Config {
  const names = ['devices', 'pull-ms', 'start-ms', 'health-ms', 'pull-failures', 'health-failures', 'seed', 'rollout', 'enroll-concurrency', 'timeout'] as const;
  const { values } = parseArgs({ options: Object.fromEntries(names.map((n) => [n, { type: 'string' }])), strict: true });
  const get = (name: (typeof names)[number], fallback: string): string =>
    (values as Record<string, string | undefined>)[name] ?? process.env[`FLEET_SIM_${name.toUpperCase().replaceAll('-', '_')}`] ?? fallback;
  const num = (name: (typeof names)[number], fallback: string): number => {
    const n = Number(get(name, fallback));
    if (!Number.isFinite(n)) throw new Error(`--${name}: not a number: ${get(name, fallback)}`);
    return n;
  };
  const range = (name: (typeof names)[number], fallback: string): DurationSpec => {
    const m = /^(\d+)(?:\.\.(\d+))?$/.exec(get(name, fallback));
    if (!m) throw new Error(`--${name}: expected MS or MIN..MAX, not ${get(name, fallback)}`);
    return m[2] === undefined ? Number(m[1]) : { min: Number(m[1]), max: Number(m[2]) };
  };
  const rollout = get('rollout', '');
  return {
    devices: num('devices', '1000'),
    pullMs: range('pull-ms', '1000..5000'),
    startMs: range('start-ms', '200..1000'),
    healthMs: range('health-ms', '500..2000'),
    pullFailures: num('pull-failures', '0'),
    healthFailures: num('health-failures', '0'),
    seed: num('seed', '1'),
    rollout: rollout ? (JSON.parse(rollout) as Record<string, unknown>) : null,
    enrollConcurrency: num('enroll-concurrency', '8'),
    timeoutMs: num('timeout', '300') * 1000,
  };
}

function printRollout(what: string, r: RolloutResult): void {
  const q = r.runningAtMs;
  console.log(
    `${what.padEnd(8)} revision ${r.revision}: request ${r.requestMs} ms; all settled ${seconds(r.simSettledMs)} (simulator), ${seconds(r.hubSettledMs)} (hub); ` +
      `${r.running} running, ${r.failed} failed; running after first ${seconds(q.first)}, p50 ${seconds(q.p50)}, p95 ${seconds(q.p95)}, last ${seconds(q.last)}`,
  );
}

async function main(): Promise<void> {
  const config = readConfig();
  const data = await mkdtemp(join(tmpdir(), 'edgeml-fleet-sim-'));
  let hub: Hub | null = null;
  let fleet: Fleet | null = null;
  const cleanUp = async () => {
    await fleet?.stop();
    await hub?.stop();
    await rm(data, { recursive: true, force: true });
  };
  // Bounded: a hub that never converges fails the run instead of holding the machine.
  const deadline = setTimeout(() => {
    console.error(`fleet-sim: not done after ${seconds(config.timeoutMs)}; counts: ${JSON.stringify(fleet?.counts(SERVICE))}`);
    void cleanUp().finally(() => process.exit(1));
  }, config.timeoutMs);

  try {
    const range = (d: DurationSpec) => (typeof d === 'number' ? `${d}` : `${d.min}..${d.max}`);
    console.log(
      `fleet-sim: ${config.devices} simulated devices, seed ${config.seed}, pull ${range(config.pullMs)} ms, start ${range(config.startMs)} ms, health ${range(config.healthMs)} ms, ` +
        `update failures pull ${config.pullFailures} health ${config.healthFailures}, rollout ${JSON.stringify(config.rollout ?? 'hub default')}`,
    );
    hub = await startHub({ data });
    fleet = await startFleet({
      hub,
      count: config.devices,
      idPrefix: 'sim',
      labels: () => LABELS,
      timing: { pullMs: config.pullMs, startMs: config.startMs, healthMs: config.healthMs },
      failures: ({ revision }) => (revision >= 2 ? { pull: config.pullFailures, health: config.healthFailures } : {}),
      seed: config.seed,
      enrollConcurrency: config.enrollConcurrency,
    });
    const e = fleet.enrollment;
    console.log(`enroll   ${e.devices} devices in ${seconds(e.ms)} (${Math.round((e.devices * 1000) / e.ms)}/s, ${e.concurrency} at a time, slowest request ${e.maxRequestMs} ms)`);
    console.log(`connect  ${e.devices} devices online in ${seconds(fleet.connectMs)}`);
    const rolloutField = config.rollout ? { rollout: config.rollout } : {};
    const f = fleet;
    const h = hub;
    const common = { service: SERVICE, labels: LABELS, timeoutMs: config.timeoutMs, checkDevices: true };
    const deployed = await rollout(h, f, { ...common, revision: 1, send: () => call(h, 'POST', '/api/v1/deployments', { service: SERVICE, image: image('1'), target: LABELS, ...rolloutField }) });
    printRollout('deploy', deployed);
    const updated = await rollout(h, f, { ...common, revision: 2, send: () => call(h, 'POST', `/api/v1/deployments/${SERVICE}/update`, { image: image('2'), ...rolloutField }) });
    printRollout('update', updated);
    const mb = (pid: number) => {
      const u = processUsage(pid);
      return { cpuS: u.cpuS, rssMb: rssMb(u.rssBytes) };
    };
    const usage = { simulator: mb(process.pid), hub: mb(h.pid) };
    console.log(`usage    simulator ${usage.simulator.cpuS.toFixed(1)} CPU s, ${usage.simulator.rssMb} MB; hub ${usage.hub.cpuS.toFixed(1)} CPU s, ${usage.hub.rssMb} MB`);
    console.log(JSON.stringify({ bench: 'fleet-sim', config, enrollment: e, connectMs: fleet.connectMs, deploy: deployed, update: updated, usage }));
  } finally {
    clearTimeout(deadline);
    await cleanUp();
  }
}

main().catch((err: unknown) => {
  console.error(`fleet-sim: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
