/**
 * Agent footprint (issue 8, benchmark 4): RSS and CPU of a real agent (`bin/edgeml agent start`
 * from dist/, pinned to the system-under-test cores) with one service deployed and telemetry every
 * 10 s, first idle, then under a modest fixed scoring load through its gateway; beside it, sampled
 * at the same instants, a bare Node process that only holds an MQTT connection to the same broker
 * (bench/lib/bare-mqtt-client.mjs), pinned to the same cores: the floor any Node agent pays.
 *
 * The hub, the scoring container and the load generator (autocannon) run on the load cores, so
 * what they do is not counted in, nor competing with, what is measured. The service is the node
 * fixture app (test/fixtures/runtimes/node/commonjs), built by the hub for linux/amd64 into the
 * rig's registry; its containers, local images and registry tag are removed at the end.
 *
 *   npm run build && npx tsx bench/agent-footprint.ts [--quick]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { DeploymentCreated } from '../shared/api/deployments.js';
import type { Device } from '../shared/api/devices.js';
import type { Image } from '../shared/api/images.js';
import { cleanEnv, runCli } from '../test/helpers/cli.js';
import { EDGEML_BIN, EdgemlProcess } from '../test/helpers/edgeml-process.js';
import { exec } from '../test/helpers/exec.js';
import { rig } from '../test/helpers/rig.js';
import { runStandalone, type Row, type Scenario, type ScenarioContext } from './lib/scenario.js';
import { enrollThroughRest, startHub, type Hub } from './lib/hub.js';
import { sampleUsage, type UsageSummary } from './lib/process-usage.js';
import { spawnPinned, stopChild } from './lib/processes.js';
import { MiB } from './lib/stats.js';

const FIXTURES = fileURLToPath(new URL('../test/fixtures/runtimes/', import.meta.url));
const BARE_CLIENT = fileURLToPath(new URL('./lib/bare-mqtt-client.mjs', import.meta.url));
const AUTOCANNON = fileURLToPath(new URL('../node_modules/autocannon/autocannon.js', import.meta.url));
const SERVICE = 'footprint';

interface Settings {
  idleMs: number;
  loadMs: number;
  sampleEveryMs: number;
  /** Scoring requests per second, all connections together. */
  rate: number;
  connections: number;
}

const QUICK: Settings = { idleMs: 12_000, loadMs: 7_000, sampleEveryMs: 500, rate: 50, connections: 4 };
const FULL: Settings = { idleMs: 60_000, loadMs: 60_000, sampleEveryMs: 1000, rate: 50, connections: 4 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(500);
  }
}

/** Runs the edgeml CLI against the hub; its JSON answer, or an error with its stderr. */
async function cli<T>(hub: Hub, timeoutMs: number, ...args: string[]): Promise<T> {
  const r = await runCli([...args, '--json'], { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey }, timeoutMs);
  if (r.code !== 0) throw new Error(`edgeml ${args.slice(0, 2).join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout) as T;
}

async function containersOf(deviceId: string): Promise<string[]> {
  return (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
}

/**
 * Removes the service's image: the local copies (the build's and the agent's pull, tagged or not)
 * and every tag of its repository in the registry.
 */
async function removeImage(registry: string, ref: string, log: (m: string) => void): Promise<void> {
  const repo = ref.replace(/@sha256:[0-9a-f]+$/, '').replace(/:[^/:]+$/, '');
  // By reference, never by image id: an identical build under another prefix (another run) shares the id.
  const local = await exec('docker', ['image', 'ls', '--digests', '--format', '{{.Repository}} {{.Tag}} {{.Digest}}', repo], { timeoutMs: 30_000 });
  const refs = new Set<string>();
  for (const line of local.stdout.split('\n').filter(Boolean)) {
    const [r, tag, digest] = line.split(' ');
    if (tag && tag !== '<none>') refs.add(`${r}:${tag}`);
    if (digest && digest !== '<none>') refs.add(`${r}@${digest}`);
  }
  for (const r of refs) {
    const out = await exec('docker', ['rmi', r], { timeoutMs: 60_000 });
    if (out.code !== 0 && !/No such image/i.test(out.stderr)) log(`docker rmi ${r}: ${out.stderr.trim()}`);
  }
  const name = repo.slice(registry.length + 1);
  try {
    const res = await request(`http://${registry}/v2/${name}/tags/list`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
    const tags = res.statusCode === 200 ? (((await res.body.json()) as { tags: string[] | null }).tags ?? []) : (await res.body.dump(), []);
    for (const tag of tags) {
      // Every manifest type: a single-platform build pushes a plain image manifest, not an index, and
      // asked only for an index this registry answers a converted schema-1 copy under another digest.
      const head = await request(`http://${registry}/v2/${name}/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_TYPES } });
      await head.body.dump();
      const digest = head.headers['docker-content-digest'];
      if (head.statusCode !== 200 || typeof digest !== 'string') continue;
      const del = await request(`http://${registry}/v2/${name}/manifests/${digest}`, { method: 'DELETE' });
      await del.body.dump();
      if (del.statusCode !== 202) log(`registry: deleting ${name}:${tag} (${digest}) answered ${del.statusCode}`);
    }
  } catch (err) {
    log(`registry cleanup of ${name}: ${(err as Error).message}`);
  }
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface LoadResult {
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

/** autocannon at a fixed overall rate, in its own process on the load cores. */
async function scoringLoad(cores: string, url: string, key: string, body: string, s: Settings): Promise<LoadResult> {
  const args = [AUTOCANNON, '-m', 'POST', '-H', 'content-type=application/json', '-H', `authorization=Bearer ${key}`, '-b', body, '-c', String(s.connections), '-R', String(s.rate), '-d', String(s.loadMs / 1000), '-j', url];
  const child = spawnPinned(cores, process.execPath, args, { files: 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), s.loadMs + 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`autocannon exited ${code}: ${stderr.trim()}`);
  const r = JSON.parse(stdout) as { requests: { total: number; average: number }; non2xx: number; errors: number; timeouts: number; latency: { p50: number; p99: number } };
  return { requests: r.requests.total, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, rps: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99 };
}

async function run(ctx: ScenarioContext) {
  const s = ctx.quick ? QUICK : FULL;
  const { registry } = rig();
  const suffix = randomBytes(4).toString('hex');
  const prefix = `edgeml-bench-${suffix}`;
  const agentId = `footprint-agent-${suffix}`;
  const bareId = `footprint-bare-${suffix}`;
  const temp: string[] = [];
  const dir = async (p: string) => {
    const d = await mkdtemp(join(tmpdir(), p));
    temp.push(d);
    return d;
  };
  let hub: Hub | null = null;
  let agent: EdgemlProcess | null = null;
  let bare: ReturnType<typeof spawnPinned> | null = null;
  let imageRef: string | null = null;
  try {
    // The hub is not measured here: it runs on the load cores.
    hub = await startHub({ cores: ctx.cores.load, files: 4096, data: await dir('edgeml-bench-footprint-hub-'), args: ['--registry', registry], env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
    const h = hub;
    const t0 = Date.now();
    await cli(h, 60_000, 'model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'));
    await cli(h, 60_000, 'manifest', 'create', SERVICE, '--runtime', 'node', '--score', join(FIXTURES, 'node', 'commonjs', 'score.js'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'));
    const image = await cli<Image>(h, 5 * 60_000, 'image', 'build', SERVICE, '--platform', 'linux/amd64');
    if (image.status !== 'succeeded' || !image.ref) throw new Error(`the image build ended ${image.status}`);
    imageRef = image.ref;
    ctx.log(`image ${image.ref} built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const [agentCred] = (await enrollThroughRest(h, [agentId], { labels: { bench: 'footprint' } })).devices;
    const [bareCred] = (await enrollThroughRest(h, [bareId], { labels: { bench: 'bare' } })).devices;
    const agentChild = spawnPinned(
      ctx.cores.sut,
      process.execPath,
      [EDGEML_BIN, 'agent', 'start', '--hub', `mqtt://${h.mqtt}`, '--device-id', agentId, '--data', await dir('edgeml-bench-footprint-agent-'), '--gateway', '127.0.0.1:0', '--gateway-tls', 'off', '--platform', 'linux/amd64', '--telemetry-interval', '10s'],
      { files: 1024, stdio: ['ignore', 'pipe', 'pipe'], env: { ...cleanEnv(), EDGEML_AGENT_TOKEN: agentCred!.token } },
    );
    agent = new EdgemlProcess(agentChild);
    const a = agent;
    const trim = setInterval(() => a.logs.splice(0, Math.max(0, a.logs.length - 200)), 1000);
    try {
      await a.waitForLog('the agent connected', (l) => l.msg === 'connected to hub', 60_000);
      bare = spawnPinned(ctx.cores.sut, process.execPath, [BARE_CLIENT, `mqtt://${h.mqtt}`, bareId], { files: 1024, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BENCH_DEVICE_TOKEN: bareCred!.token } });
      const b = bare;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the bare client did not connect in 30 s')), 30_000);
        b.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('connected')) {
            clearTimeout(timer);
            resolve();
          }
        });
        b.once('exit', (code) => reject(new Error(`the bare client exited ${code}`)));
      });

      const deployed = await cli<DeploymentCreated>(h, 60_000, 'deploy', SERVICE, '--build', String(image.id), '--target', 'bench=footprint');
      const running = await waitFor('the service running on the agent', 3 * 60_000, async () => {
        const res = await request(`${h.url}/api/v1/devices/${agentId}`, { headers: { authorization: `Bearer ${h.adminKey}` } });
        const d = (await res.body.json()) as Device;
        return d.services[0]?.phase === 'running' && d.gateway ? d : undefined;
      });
      // The container is the device's workload, not the agent: keep it off the measured cores.
      for (const id of await containersOf(agentId)) {
        const r = await exec('docker', ['update', '--cpuset-cpus', ctx.cores.load, id], { timeoutMs: 30_000 });
        if (r.code !== 0) ctx.log(`could not pin container ${id} to cores ${ctx.cores.load}: ${r.stderr.trim()}`);
      }
      const scoreUrl = `${running.gateway}/v1/services/${SERVICE}/score`;
      const { sample } = JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8')) as { sample: unknown };
      const body = JSON.stringify(sample);
      const probe = await request(scoreUrl, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${deployed.key}` }, body });
      const probeText = await probe.body.text();
      if (probe.statusCode !== 200) throw new Error(`a scoring request through the gateway answered ${probe.statusCode}: ${probeText}`);
      ctx.log(`service running after ${((Date.now() - t0) / 1000).toFixed(1)} s; gateway ${running.gateway}; agent pid ${a.child.pid}, bare client pid ${b.pid}`);

      await sleep(2000);
      const pids = [a.child.pid!, b.pid!];
      const [agentIdle, bareIdle] = (await sampleUsage(pids, s.idleMs, s.sampleEveryMs)) as [UsageSummary, UsageSummary];
      ctx.log(`idle: agent ${(agentIdle.rssMeanBytes / MiB).toFixed(1)} MiB, ${agentIdle.cpuMeanPercent.toFixed(2)}% CPU; bare ${(bareIdle.rssMeanBytes / MiB).toFixed(1)} MiB, ${bareIdle.cpuMeanPercent.toFixed(2)}% CPU`);

      const load = scoringLoad(ctx.cores.load, scoreUrl, deployed.key!, body, s);
      // Skip autocannon's start; stop before its end.
      await sleep(500);
      const [agentLoad, bareLoad] = (await sampleUsage(pids, s.loadMs - 1000, s.sampleEveryMs)) as [UsageSummary, UsageSummary];
      const served = await load;
      ctx.log(`under ${served.rps.toFixed(0)} req/s (p99 ${served.p99Ms} ms, ${served.non2xx} non-2xx): agent ${(agentLoad.rssMeanBytes / MiB).toFixed(1)} MiB, ${agentLoad.cpuMeanPercent.toFixed(1)}% CPU`);
      if (served.non2xx + served.errors + served.timeouts > 0) ctx.log(`scoring load: ${served.non2xx} non-2xx, ${served.errors} errors, ${served.timeouts} timeouts`);

      const idleNote = `one service deployed, telemetry every 10 s, ${(agentIdle.seconds).toFixed(0)} s sampled every ${s.sampleEveryMs} ms`;
      const loadNote = `${s.rate} scoring requests/s through the gateway (${served.requests} sent, ${served.non2xx + served.errors} failed); the bare client stays idle`;
      const rows: Row[] = [
        { metric: 'idle RSS, mean', unit: 'MiB', edgeml: agentIdle.rssMeanBytes / MiB, peer: bareIdle.rssMeanBytes / MiB, better: 'lower', note: idleNote },
        { metric: 'idle RSS, max', unit: 'MiB', edgeml: agentIdle.rssMaxBytes / MiB, peer: bareIdle.rssMaxBytes / MiB, better: 'lower' },
        { metric: 'idle CPU, mean', unit: '% of a core', edgeml: agentIdle.cpuMeanPercent, peer: bareIdle.cpuMeanPercent, better: 'lower' },
        { metric: `idle CPU, max over ${s.sampleEveryMs} ms`, unit: '% of a core', edgeml: agentIdle.cpuMaxPercent, peer: bareIdle.cpuMaxPercent, better: 'lower' },
        { metric: 'RSS under scoring load, mean', unit: 'MiB', edgeml: agentLoad.rssMeanBytes / MiB, peer: bareLoad.rssMeanBytes / MiB, better: 'lower', note: loadNote },
        { metric: 'RSS under scoring load, max', unit: 'MiB', edgeml: agentLoad.rssMaxBytes / MiB, peer: bareLoad.rssMaxBytes / MiB, better: 'lower' },
        { metric: 'CPU under scoring load, mean', unit: '% of a core', edgeml: agentLoad.cpuMeanPercent, peer: bareLoad.cpuMeanPercent, better: 'lower' },
        { metric: `CPU under scoring load, max over ${s.sampleEveryMs} ms`, unit: '% of a core', edgeml: agentLoad.cpuMaxPercent, peer: bareLoad.cpuMaxPercent, better: 'lower' },
        {
          metric: 'agent CPU per scoring request',
          unit: 'ms',
          edgeml: ((agentLoad.cpuMeanPercent / 100) * 1000) / served.rps,
          peer: null,
          better: 'lower',
          note: `gateway p50 ${served.p50Ms} ms, p99 ${served.p99Ms} ms (container included)`,
        },
      ];
      return { rows, details: { settings: s, cores: ctx.cores, image: image.ref, idle: { agent: agentIdle, bare: bareIdle }, load: { agent: agentLoad, bare: bareLoad, autocannon: served } } };
    } finally {
      clearInterval(trim);
    }
  } finally {
    if (bare) await stopChild(bare, 'SIGTERM', 5_000).catch(() => undefined);
    if (agent) await stopChild(agent.child, 'SIGTERM', 15_000);
    if (hub) await hub.stop().catch(() => undefined);
    for (const id of await containersOf(agentId).catch(() => [])) await exec('docker', ['rm', '-f', id], { timeoutMs: 30_000 });
    if (imageRef) await removeImage(registry, imageRef, ctx.log);
    for (const d of temp) await rm(d, { recursive: true, force: true });
  }
}

export const scenario: Scenario = {
  name: 'agent-footprint',
  title: 'Agent footprint: RSS and CPU of an agent with one service, idle and under scoring load',
  peer: 'a bare Node process holding one MQTT connection (mqtt.js, same broker)',
  run,
};

if (process.argv[1] === fileURLToPath(import.meta.url)) await runStandalone(scenario);
