/**
 * Time from the start of an overload to 3 ready replicas, on a real device: a real hub (on the load
 * cores: not measured) builds the linear fixture app (test/fixtures/runtimes/node/linear, whose
 * `slow` input sleeps FIXTURE_SLOW_RUN_MS, here the overload's 20 ms) into the rig's registry under a
 * throw-away `edgeml-bench-RANDOM` prefix; a real agent (`bin/edgeml agent start` from dist/, pinned
 * to the system-under-test cores) runs it with `--min-replicas 1 --max-replicas 3 --scale-up-window
 * 5s`, maxConcurrent 1 and maxQueue 10 per replica. Once one replica serves, the load generator
 * offers OFFERED/s (3× one replica's capacity) through the agent's gateway, and the hub's view of
 * the device (`GET /api/v1/devices/{id}`, every 100 ms) is watched until `replicas.ready` is 3.
 *
 * The load's start is when its generator sent the first request: the phase's end (its process
 * answered) less the phase's own length, so the generator's start-up is not counted. The figure
 * includes the autoscaler's decisions (the scale-up window is an average over the last 5 s, not a
 * wait: it passes the target soon after the queue fills), the new containers' start and /health,
 * the route switch and the agent's report reaching the hub.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import type { ScaleDecision } from '../../shared/protocol.js';
import { cleanEnv, runCli } from '../../test/helpers/cli.js';
import { EDGEML_BIN, EdgemlProcess } from '../../test/helpers/edgeml-process.js';
import { exec } from '../../test/helpers/exec.js';
import { deleteFromRegistry, rig } from '../../test/helpers/rig.js';
import { waitFor } from '../../test/helpers/wait.js';
import { call, enrollThroughRest, startHub, type Hub } from './hub.js';
import { runLoad, type LoadResult } from './load.js';
import { CONNECTIONS, LIMITS, OFFERED, SERVICE_MS, TIMEOUT_MS, headersFor } from './overload-rounds.js';
import { spawnPinned, stopChild } from './processes.js';
import type { ScenarioContext } from './scenario.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/runtimes/', import.meta.url));
const SERVICE = 'overload';
export const REPLICAS = 3;
export const SCALE_UP_WINDOW = '5s';
const POLL_MS = 100;

export interface ScaleUp {
  /** From the load's first request until the hub showed REPLICAS ready replicas. */
  seconds: number;
  /** The autoscaler's decisions the hub showed while the load ran, each with its seconds from the load's start. */
  decisions: Array<ScaleDecision & { afterS: number }>;
  /** The whole load phase, for its goodput and statuses (1 replica at first, REPLICAS at the end). */
  load: LoadResult;
  image: string;
}

async function cli<T>(hub: Hub, timeoutMs: number, ...args: string[]): Promise<T> {
  const r = await runCli([...args, '--json'], { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey }, timeoutMs);
  if (r.code !== 0) throw new Error(`edgeml ${args.slice(0, 2).join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout) as T;
}

async function containersOf(deviceId: string): Promise<string[]> {
  return (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
}

const serviceOf = (d: Device) => d.services.find((s) => s.name === SERVICE);

/** Runs the whole measurement, `loadSeconds` of load at most; removes what it made. */
export async function measureScaleUp(ctx: ScenarioContext, loadSeconds: number): Promise<ScaleUp> {
  const { registry } = rig();
  const suffix = randomBytes(4).toString('hex');
  const prefix = `edgeml-bench-${suffix}`;
  const deviceId = `scale-up-${suffix}`;
  const temp: string[] = [];
  const dir = async (p: string) => {
    const d = await mkdtemp(join(tmpdir(), p));
    temp.push(d);
    return d;
  };
  let hub: Hub | null = null;
  let agent: EdgemlProcess | null = null;
  let trim: NodeJS.Timeout | undefined;
  let imageRef: string | null = null;
  try {
    hub = await startHub({ cores: ctx.cores.load, files: 4096, data: await dir('edgeml-bench-scale-hub-'), args: ['--registry', registry], env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
    const h = hub;
    const t0 = Date.now();
    await cli(h, 60_000, 'model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'));
    const linear = join(FIXTURES, 'node', 'linear');
    await cli(h, 60_000, 'manifest', 'create', SERVICE, '--runtime', 'node', '--score', join(linear, 'score.js'), '--deps', join(linear, 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--env', `FIXTURE_SLOW_RUN_MS=${SERVICE_MS}`);
    const image = await cli<Image>(h, 5 * 60_000, 'image', 'build', SERVICE, '--platform', 'linux/amd64');
    if (image.status !== 'succeeded' || !image.ref) throw new Error(`the image build ended ${image.status}`);
    imageRef = image.ref;
    ctx.log(`scale-up: image ${image.ref} built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const [cred] = (await enrollThroughRest(h, [deviceId], { labels: { bench: deviceId } })).devices;
    const child = spawnPinned(
      ctx.cores.sut,
      process.execPath,
      [EDGEML_BIN, 'agent', 'start', '--hub', `mqtt://${h.mqtt}`, '--device-id', deviceId, '--data', await dir('edgeml-bench-scale-agent-'), '--gateway', '127.0.0.1:0', '--gateway-tls', 'off', '--platform', 'linux/amd64'],
      { files: 1024, stdio: ['ignore', 'pipe', 'pipe'], env: { ...cleanEnv(), EDGEML_AGENT_TOKEN: cred!.token } },
    );
    agent = new EdgemlProcess(child);
    const a = agent;
    trim = setInterval(() => a.logs.splice(0, Math.max(0, a.logs.length - 200)), 1000);
    await a.waitForLog('the agent connected', (l) => l.msg === 'connected to hub', 60_000);

    const deployed = await cli<DeploymentCreated>(
      h, 60_000, 'deploy', SERVICE, '--build', String(image.id), '--target', `bench=${deviceId}`,
      '--max-concurrent', String(LIMITS.maxConcurrent), '--max-queue', String(LIMITS.maxQueue),
      '--min-replicas', '1', '--max-replicas', String(REPLICAS), '--scale-up-window', SCALE_UP_WINDOW,
    );
    const device = () => call<Device>(h, 'GET', `/api/v1/devices/${deviceId}`);
    const one = await waitFor(
      'one ready replica',
      async () => {
        const d = await device();
        const svc = serviceOf(d);
        if (svc?.phase === 'rejected') throw new Error(`the device rejected the service: ${svc.error?.message}`);
        return svc?.phase === 'running' && svc.replicas?.ready === 1 && d.gateway ? d : undefined;
      },
      3 * 60_000,
      250,
    );
    ctx.log(`scale-up: 1 replica serving after ${((Date.now() - t0) / 1000).toFixed(1)} s; ${loadSeconds} s at ${OFFERED}/s through ${one.gateway}`);

    const { sample } = JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8')) as { sample: object };
    let readyAt: number | null = null;
    // The hub keeps only the latest decision (`lastScale`): every one seen while polling.
    const seen: ScaleDecision[] = [];
    let loading = true;
    const load = runLoad(
      {
        url: `${one.gateway}/v1/services/${SERVICE}/score`,
        headers: headersFor(deployed.key!),
        body: JSON.stringify({ ...sample, fixture: 'slow' }),
        phases: [{ mode: 'open', rate: OFFERED, connections: CONNECTIONS, seconds: loadSeconds, timeoutMs: TIMEOUT_MS }],
      },
      ctx.cores.load,
    ).finally(() => void (loading = false));
    while (loading && readyAt === null) {
      const d = await device().catch(() => null);
      const svc = d && serviceOf(d);
      if (svc?.lastScale && !seen.some((x) => x.at === svc.lastScale!.at)) seen.push(svc.lastScale);
      if (svc?.replicas?.ready === REPLICAS) readyAt = performance.now();
      else await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const [result] = await load;
    const loadEnd = performance.now();
    if (readyAt === null) throw new Error(`the device did not report ${REPLICAS} ready replicas within ${loadSeconds} s of load at ${OFFERED}/s`);
    const loadStart = loadEnd - result!.seconds * 1000;
    const seconds = (readyAt - loadStart) / 1000;
    // The agent stamps its decisions with the wall clock of this same machine.
    const decisions = seen.map((x) => ({ ...x, afterS: (Date.parse(x.at) - (performance.timeOrigin + loadStart)) / 1000 }));
    ctx.log(`scale-up: ${REPLICAS} ready replicas ${seconds.toFixed(2)} s after the load's start; decisions: ${decisions.map((x) => `+${x.afterS.toFixed(2)} s ${x.from} → ${x.to} (${x.reason})`).join('; ') || 'none seen'}`);
    return { seconds, decisions, load: result!, image: image.ref };
  } finally {
    clearInterval(trim);
    if (agent) await stopChild(agent.child, 'SIGTERM', 15_000);
    if (hub) await hub.stop().catch(() => undefined);
    for (const id of await containersOf(deviceId).catch(() => [])) await exec('docker', ['rm', '-f', id], { timeoutMs: 30_000 });
    if (imageRef) await removeImage(registry, imageRef, ctx.log);
    for (const d of temp) await rm(d, { recursive: true, force: true });
  }
}

/** `+0.4 s 1 → 2, +2.1 s 2 → 3`: when the autoscaler decided, for the row's note. */
export function describeDecisions(decisions: ScaleUp['decisions']): string {
  return decisions.map((x) => `+${x.afterS.toFixed(1)} s ${x.from} → ${x.to}`).join(', ') || 'no decision seen';
}

/**
 * The image's local references (the agent pulled `REPO@sha256:…`; the hub's smoke test may have
 * tagged it) and its manifest in the registry. By reference, never by image id: an identical build
 * of another run shares the id.
 */
async function removeImage(registry: string, ref: string, log: (m: string) => void): Promise<void> {
  const [repo, digest] = ref.split('@') as [string, string];
  const tags = (await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', repo], { timeoutMs: 30_000 })).stdout.split('\n').filter((r) => r && !r.endsWith(':<none>'));
  for (const r of [ref, ...tags]) {
    const out = await exec('docker', ['rmi', r], { timeoutMs: 60_000 });
    if (out.code !== 0 && !/No such image/i.test(out.stderr)) log(`docker rmi ${r}: ${out.stderr.trim()}`);
  }
  await deleteFromRegistry(registry, repo.slice(registry.length + 1), digest).catch((err: unknown) => log(`registry cleanup of ${repo}: ${String(err)}`));
}
