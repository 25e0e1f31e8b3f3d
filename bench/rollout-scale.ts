/**
 * Benchmark 5, rollout at scale: a real hub (dist/, pinned to the SUT cores) and the fleet
 * simulator (bench/simulator/, in this process, pinned to the load cores) with 1,000 and 5,000
 * devices (quick: 200). For each size, after enrolling and connecting the fleet: a deploy and an
 * update on an instant simulated runtime (the hub's own share: desired states out, reports in,
 * rollout bookkeeping), then an update on a simulated runtime with realistic pull, start and health
 * times; MQTT messages counted by the simulated devices, the hub's CPU and memory sampled from /proc.
 *
 * Peers, in the same run: the same fan-out on Mosquitto (Debian) on its own loopback port — the
 * same desired state, retained QoS 1, to N subscribed clients, one QoS 1 report back from each — as
 * the floor of any controller over MQTT; and, for the update, the simulator's own floor (the
 * slowest drawn pull + start + health), which no controller can beat.
 *
 *   npm run build && npx tsx bench/rollout-scale.ts [--quick]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { drawnStepsMs, startFleet, type Fleet } from './simulator/fleet-simulator.js';
import { deviceIds, type Timing } from './simulator/options.js';
import { runFanout, type FanoutResult } from './lib/broker-fanout.js';
import { rollout, seconds, type RolloutResult } from './lib/fleet.js';
import { call, startHub, type Hub } from './lib/hub.js';
import { startMosquitto, type Mosquitto } from './lib/mosquitto.js';
import { processUsage, rssMb, startUsageSampler, type SamplerSummary } from './lib/process-usage.js';
import { runStandalone, type Row, type Scenario, type ScenarioContext } from './lib/scenario.js';

const SERVICE = 'bench';
const LABELS = { site: 'rollout-scale' };
const ID_PREFIX = 'scale';
const SEED = 1;
const image = (hexDigit: string) => `127.0.0.1:5000/rollout-scale/bench@sha256:${hexDigit.repeat(64)}`;
/** The deploy: nothing to wait for on the device, so what is left is the hub and MQTT. */
const INSTANT: Timing = { pullMs: 0, startMs: 0, healthMs: 0 };
/** The update: fleet-sim's defaults, a small image on a slow link and a model that loads in a second. */
const REALISTIC: Timing = { pullMs: { min: 1000, max: 5000 }, startMs: { min: 200, max: 1000 }, healthMs: { min: 500, max: 2000 } };
const SAMPLE_MS = 250;
/** Revisions 1 (the deploy) and 2 (an update) run on the instant runtime, 3 on the realistic one. */
const SLOW_REVISION = 3;

const run$ = promisify(execFile);

/** Moves every thread of `pid` to `cores`; returns how to put it back. */
async function pinProcess(pid: number, cores: string): Promise<() => Promise<void>> {
  const { stdout } = await run$('taskset', ['-p', String(pid)]);
  const mask = /mask:\s*([0-9a-f]+)/i.exec(stdout)?.[1];
  await run$('taskset', ['-a', '-p', '-c', cores, String(pid)]);
  return async () => {
    if (mask) await run$('taskset', ['-a', '-p', mask, String(pid)]).catch(() => undefined);
  };
}

interface MeasuredRollout extends RolloutResult {
  messagesPerDevice: number;
  /** The hub process while the rollout ran. */
  hub: SamplerSummary;
  /** CPU seconds of this process (the simulated devices) meanwhile: near the wall time means the load generator was the limit. */
  simulatorCpuS: number;
  /** Device messages the hub counted (`/healthz` mqtt.received). */
  hubReceived: number;
}

interface EdgemlRun {
  devices: number;
  enrollMs: number;
  connectMs: number;
  /** Hub memory with every device connected, before the deploy. */
  connectedRssMb: number;
  /** The first rollout after the hub started, on an instant runtime. */
  deploy: MeasuredRollout;
  /** A second one, the same but warm. */
  update: MeasuredRollout;
  /** A third, on the realistic runtime, and its floor. */
  slowUpdate: MeasuredRollout & { floorMs: number };
}

interface Healthz {
  devicesOnline: number;
  mqtt: { connectedClients: number; received: number; invalid: number };
}

async function measure(hub: Hub, fleet: Fleet, revision: number, send: () => Promise<unknown>, timeoutMs: number): Promise<MeasuredRollout> {
  const hubPid = hub.pid;
  const before = fleet.messages();
  const healthBefore = await call<Healthz>(hub, 'GET', '/healthz');
  const simBefore = processUsage(process.pid);
  const sampler = startUsageSampler(hubPid, SAMPLE_MS);
  // The hub is asked often once the devices are done, and only for its rollout's phase (cheap).
  const result = await rollout(hub, fleet, { service: SERVICE, labels: LABELS, revision, send, timeoutMs, pollMs: 50 });
  const usage = await sampler.stop();
  const simulatorCpuS = processUsage(process.pid).cpuS - simBefore.cpuS;
  const after = fleet.messages();
  const healthAfter = await call<Healthz>(hub, 'GET', '/healthz');
  if (result.failed) throw new Error(`revision ${revision}: ${result.failed} devices did not run it`);
  return {
    ...result,
    messagesPerDevice: (after.sent + after.received - before.sent - before.received) / fleet.ids.length,
    hub: usage,
    simulatorCpuS: Math.round(simulatorCpuS * 100) / 100,
    hubReceived: healthAfter.mqtt.received - healthBefore.mqtt.received,
  };
}

/** The simulated fleet, or a failure once `deadlineMs` has passed (the hub, killed then, fails the enrollment). */
async function fleetWithin(start: Promise<Fleet>, deadlineMs: number, devices: number): Promise<Fleet> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${devices} devices were not enrolled and online within ${seconds(deadlineMs)}`)), deadlineMs);
  });
  try {
    return await Promise.race([start, late]);
  } catch (err) {
    // A fleet that comes up after all is stopped; one that fails after all is no news.
    start.then((f) => f.stop(), () => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function runEdgeml(ctx: ScenarioContext, devices: number, budgetMs: number): Promise<EdgemlRun> {
  const started = Date.now();
  const left = () => Math.max(1000, budgetMs - (Date.now() - started));
  const data = await mkdtemp(join(tmpdir(), 'edgeml-bench-rollout-'));
  let hub: Hub | null = null;
  let fleet: Fleet | null = null;
  try {
    hub = await startHub({ data, cores: ctx.cores.sut });
    const h = hub;
    ctx.log(`${devices} devices: enrolling and connecting (budget ${seconds(budgetMs)})`);
    const start = startFleet({
      hub: h,
      count: devices,
      idPrefix: ID_PREFIX,
      labels: () => LABELS,
      timing: ({ revision }) => (revision < SLOW_REVISION ? INSTANT : REALISTIC),
      seed: SEED,
      connect: { readyTimeoutMs: budgetMs },
    });
    fleet = await fleetWithin(start, left(), devices);
    const f = fleet;
    ctx.log(`${devices} devices: enrolled in ${seconds(f.enrollment.ms)}, online in ${seconds(f.connectMs)}; deploying`);
    const connectedRssMb = rssMb(processUsage(h.pid).rssBytes);
    const update = (revision: number) => () => call(h, 'POST', `/api/v1/deployments/${SERVICE}/update`, { image: image(String(revision)) });
    const deploy = await measure(h, f, 1, () => call(h, 'POST', '/api/v1/deployments', { service: SERVICE, image: image('1'), target: LABELS }), left());
    const warm = await measure(h, f, 2, update(2), left());
    ctx.log(
      `${devices} devices: deploy settled in ${seconds(deploy.hubSettledMs)} (simulator ${deploy.simulatorCpuS} CPU s, hub ${deploy.hub.cpuS}), ` +
        `a warm update in ${seconds(warm.hubSettledMs)} (simulator ${warm.simulatorCpuS} CPU s, hub ${warm.hub.cpuS}); updating on the slow runtime`,
    );
    const slow = await measure(h, f, SLOW_REVISION, update(SLOW_REVISION), left());
    // The floor of the slow update: the slowest device's own pull + start + health, as drawn.
    const floorMs = Math.max(
      ...f.ids.map((id) => {
        const d = drawnStepsMs(SEED, REALISTIC, id, SERVICE, SLOW_REVISION);
        return d.pullMs + d.startMs + d.healthMs;
      }),
    );
    ctx.log(`${devices} devices: slow update settled in ${seconds(slow.hubSettledMs)} (simulated floor ${seconds(floorMs)})`);
    return { devices, enrollMs: f.enrollment.ms, connectMs: f.connectMs, connectedRssMb, deploy, update: warm, slowUpdate: { ...slow, floorMs } };
  } finally {
    await fleet?.stop().catch(() => undefined);
    await hub?.stop();
    await rm(data, { recursive: true, force: true });
  }
}

function rowsFor(e: EdgemlRun, p: FanoutResult): Row[] {
  const n = `${e.devices.toLocaleString('en-US')} devices`;
  const s = (ms: number) => Math.round(ms) / 1000;
  const [cold, warm] = [p.rounds[0]!, p.rounds[1]!];
  const all = [e.deploy, e.update, e.slowUpdate];
  return [
    {
      metric: `enroll ${n} through the REST API, 8 requests at a time`,
      unit: 's',
      edgeml: s(e.enrollMs),
      peer: null,
      better: 'lower',
      note: 'Mosquitto has no enrollment (anonymous)',
    },
    {
      metric: `connect ${n} until all are online (CONNECT, SUBSCRIBE, status)`,
      unit: 's',
      edgeml: s(e.connectMs),
      peer: s(p.connectMs),
      better: 'lower',
      note: 'peer: the same clients on Mosquitto, CONNECT and SUBSCRIBE, 100 at a time as the simulator',
    },
    {
      metric: `deploy → all healthy (hub's view), instant simulated runtime, ${n}`,
      unit: 's',
      edgeml: s(e.deploy.hubSettledMs),
      peer: s(cold.allReportedMs),
      better: 'lower',
      note: `peer: Mosquitto fan-out floor, first round; the hub's first rollout since it started; devices all running after ${seconds(e.deploy.simSettledMs)}`,
    },
    {
      metric: `update → all healthy (hub's view), instant simulated runtime, ${n}`,
      unit: 's',
      edgeml: s(e.update.hubSettledMs),
      peer: s(warm.allReportedMs),
      better: 'lower',
      note: `peer: Mosquitto fan-out floor, second round; devices all running after ${seconds(e.update.simSettledMs)}`,
    },
    {
      metric: `update → all healthy (hub's view), simulated pull 1–5 s + start 0.2–1 s + health 0.5–2 s, ${n}`,
      unit: 's',
      edgeml: s(e.slowUpdate.hubSettledMs),
      peer: s(e.slowUpdate.floorMs),
      better: 'lower',
      note: 'peer: the simulated floor (slowest drawn pull + start + health)',
    },
    {
      metric: `MQTT messages per device, deploy, ${n}`,
      unit: 'PUBLISH sent + received',
      edgeml: Math.round(e.deploy.messagesPerDevice * 100) / 100,
      peer: Math.round(cold.messagesPerDevice * 100) / 100,
      better: 'lower',
      note: `slow update: ${e.slowUpdate.messagesPerDevice.toFixed(2)} (pull progress included)`,
    },
    {
      metric: `hub / broker CPU time for the warm update, ${n}`,
      unit: 'CPU s',
      edgeml: e.update.hub.cpuS,
      peer: warm.broker.cpuS,
      better: 'lower',
      note: `deploy: ${e.deploy.hub.cpuS} vs ${cold.broker.cpuS}; slow update: ${e.slowUpdate.hub.cpuS}`,
    },
    {
      metric: `hub / broker peak CPU, all rollouts, ${n}`,
      unit: `% of a core, ${SAMPLE_MS} ms samples`,
      edgeml: Math.max(...all.map((r) => r.hub.peakCpuPct)),
      peer: Math.max(...p.rounds.map((r) => r.broker.peakCpuPct)),
      better: 'lower',
    },
    {
      metric: `hub / broker peak memory, ${n} connected`,
      unit: 'MB RSS',
      edgeml: Math.max(...all.map((r) => r.hub.peakRssMb)),
      peer: Math.max(...p.rounds.map((r) => r.broker.peakRssMb)),
      better: 'lower',
      note: `before the first rollout: hub ${e.connectedRssMb} MB, Mosquitto ${p.connectedRssMb} MB`,
    },
  ];
}

/**
 * Devices per size, and the time each size may take at most (quick: about a minute; full: the 1k
 * run takes about 40 s and the 5k run about 3 min on 2 cores, most of it enrolling — see README).
 */
const SIZES = { quick: [{ devices: 200, budgetMs: 50_000 }], full: [{ devices: 1000, budgetMs: 90_000 }, { devices: 5000, budgetMs: 270_000 }] };

async function run(ctx: ScenarioContext) {
  const sizes = ctx.quick ? SIZES.quick : SIZES.full;
  const restore = ctx.cores.sut === ctx.cores.load ? async () => undefined : await pinProcess(process.pid, ctx.cores.load);
  let mosquitto: Mosquitto | null = null;
  try {
    // Anonymous, and no per-client caps: the controller gets one report from every device at once,
    // which a capped queue would drop or a 20-message in-flight window would slow (the hub has neither).
    mosquitto = await startMosquitto({ cores: ctx.cores.sut, maxInflightMessages: 0 });
    const rows: Row[] = [];
    const details: Record<string, unknown> = { mosquitto: mosquitto.version, cores: ctx.cores, instant: INSTANT, realistic: REALISTIC, seed: SEED, sizes: {} };
    for (const { devices, budgetMs } of sizes) {
      ctx.log(`${devices} devices: Mosquitto fan-out floor`);
      const peer = await runFanout({ url: mosquitto.url, brokerPid: mosquitto.pid, ids: deviceIds(ID_PREFIX, devices), service: SERVICE, image: image('1'), timeoutMs: 60_000 });
      ctx.log(`${devices} devices: Mosquitto: all reported in ${peer.rounds.map((r) => `${(r.allReportedMs / 1000).toFixed(3)} s`).join(', then ')}`);
      const started = Date.now();
      const edgeml = await runEdgeml(ctx, devices, budgetMs).catch((err: Error) => {
        // The first size failing fails the scenario; a bigger one that does not fit its budget
        // keeps the smaller sizes' rows and says how far it got.
        if (devices === sizes[0]!.devices) throw err;
        ctx.log(`${devices} devices: ${err.message}`);
        return err;
      });
      if (edgeml instanceof Error) {
        const n = `${devices.toLocaleString('en-US')} devices`;
        rows.push({ metric: `${n}: gave up — ${edgeml.message.split('\n')[0]}`, unit: 's', edgeml: Math.round((Date.now() - started) / 100) / 10, peer: null, better: 'lower' });
        (details.sizes as Record<string, unknown>)[String(devices)] = { error: edgeml.message, peer };
        continue;
      }
      rows.push(...rowsFor(edgeml, peer));
      (details.sizes as Record<string, unknown>)[String(devices)] = { edgeml, peer };
    }
    return { rows, details };
  } finally {
    await mosquitto?.stop();
    await restore();
  }
}

export const scenario: Scenario = {
  name: 'rollout-scale',
  title: 'Rollout at scale: deploy and update on 1k and 5k simulated devices',
  peer: 'Mosquitto fan-out floor / simulated floor',
  run,
};

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await runStandalone(scenario);
