/**
 * Replicas on one device, with a real hub, real agents, Docker and the registry: the autoscaler
 * follows a bounded load up to its maximum and back, a fixed pair shares the work, a replica killed
 * under load costs only its own requests, and the resource guard stops at what fits.
 * The scoring model sleeps 200 ms per request (the fixture's `slow` input), so one replica with
 * maxConcurrent 1 serves about 5 requests a second.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import type { ReportedService } from '../../shared/protocol.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, type EdgemlProcess, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { startLoad, tally } from '../helpers/score-load.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const SLOW_RUN_MS = 200;

interface Box {
  id: string;
  service: string;
  running: boolean;
}

async function containersOf(deviceId: string, service?: string): Promise<Box[]> {
  const ids = (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`])).stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = JSON.parse((await exec('docker', ['inspect', ...ids])).stdout) as Array<{ Id: string; State: { Running: boolean }; Config: { Labels: Record<string, string> } }>;
  return inspected
    .map((c) => ({ id: c.Id, service: c.Config.Labels['io.edgeml.service']!, running: c.State.Running }))
    .filter((c) => service === undefined || c.service === service);
}

interface Setup {
  hub: HubProcess;
  cli: ReturnType<typeof cliFor>;
  image: Image;
  sample: { features: number[] };
  prefix: string;
}

let setup: Promise<Setup> | undefined;
const devices: string[] = [];

/** One hub and one image for the file: each test enrolls its own device and deploys its own service. */
/** The file's hub outlives each test: what it starts is torn down after the last one. */
const fileCleanups: Array<() => unknown> = [];
const fileScope = { teardown: (fn: () => unknown) => void fileCleanups.push(fn) } as unknown as ExecutionContext;

function shared(t: ExecutionContext): Promise<Setup> {
  setup ??= (async () => {
    const { registry } = rig();
    const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
    const hub = await startHub(fileScope, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
    const cli = cliFor(hub, hub.adminKey, LONG);
    jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
    jsonOf(t, await cli('manifest', 'create', 'slow', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--env', `FIXTURE_SLOW_RUN_MS=${SLOW_RUN_MS}`, '--json'));
    const image = jsonOf<Image>(t, await cli('image', 'build', 'slow', '--platform', 'linux/amd64', '--json'));
    if (image.status !== 'succeeded') throw new Error(`the image build ${image.status}`);
    const { sample } = JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8')) as { sample: { features: number[] } };
    return { hub, cli, image, sample, prefix };
  })();
  return setup;
}

test.after.always(async () => {
  for (const id of devices) for (const c of await containersOf(id)) await exec('docker', ['rm', '-f', c.id]);
  const s = await setup?.catch(() => undefined);
  if (s) await deleteFromRegistry(rig().registry, `${s.prefix}/slow`, 'v1').catch(() => undefined);
  for (const fn of fileCleanups.reverse()) await fn();
});

/** A device of its own with a running agent; `agentArgs` go to `edgeml agent start`. */
async function device(t: ExecutionContext, s: Setup, agentArgs: string[] = []): Promise<{ id: string; agent: EdgemlProcess }> {
  const id = `rep-${randomBytes(3).toString('hex')}`;
  devices.push(id);
  const token = await enrollDevice(s.hub, id, { dev: id });
  const agent = await startAgent(t, { mqttUrl: `mqtt://${s.hub.mqtt}`, deviceId: id, token, extraArgs: ['--platform', 'linux/amd64', ...agentArgs] });
  return { id, agent };
}

const serviceOn = (d: Device, name: string): ReportedService | undefined => d.services.find((x) => x.name === name);

/** Waits until the hub's view of the device shows `ready` replicas of the service running. */
function replicasAtHub(s: Setup, deviceId: string, service: string, ready: number, timeoutMs = LONG): Promise<Device> {
  return waitFor(
    `${deviceId} to report ${ready} ready replicas of ${service}`,
    async () => {
      const d = await deviceOf(s.hub, deviceId);
      const svc = serviceOn(d, service);
      if (svc?.phase === 'rejected') throw new Error(`${deviceId} rejected ${service}: ${svc.error?.message}`);
      return d.status === 'online' && d.gateway && svc?.phase === 'running' && svc.replicas?.ready === ready ? d : undefined;
    },
    timeoutMs,
    250,
  );
}

const scoreUrl = (d: Device, service: string) => `${d.gateway}/v1/services/${service}/score`;

async function deploy(t: ExecutionContext, s: Setup, service: string, deviceId: string, flags: string[]): Promise<DeploymentCreated> {
  return jsonOf<DeploymentCreated>(t, await s.cli('deploy', service, '--build', String(s.image.id), '--target', `dev=${deviceId}`, '--max-concurrent', '1', '--max-queue', '10', ...flags, '--json'));
}

test.serial('autoscaling: a bounded load of 12 clients scales 1 → 3 replicas, goodput follows, and the device returns to 1 after the load', async (t) => {
  t.timeout(LONG);
  const s = await shared(t);
  const { id } = await device(t, s);
  const deployed = await deploy(t, s, 'auto', id, ['--min-replicas', '1', '--max-replicas', '3', '--scale-down-window', '10s']);
  const d = await replicasAtHub(s, id, 'auto', 1);
  const body = { ...s.sample, fixture: 'slow' };

  // The single replica's capacity, measured here: one client, one request at a time.
  const single = startLoad({ url: scoreUrl(d, 'auto'), key: deployed.key, body, clients: 1, durationMs: 3000 });
  const singleOutcomes = await single.done;
  t.true(singleOutcomes.every((o) => o.status === 200), JSON.stringify(tally(singleOutcomes)));
  const singlePerSecond = singleOutcomes.length / 3;
  t.log(`one replica: ${singlePerSecond.toFixed(1)} requests/s`);

  const load = startLoad({ url: scoreUrl(d, 'auto'), key: deployed.key, body, clients: 12, durationMs: 30_000 });
  const scaled = await replicasAtHub(s, id, 'auto', 3, 30_000);
  t.is(serviceOn(scaled, 'auto')!.replicas!.desired, 3);
  const outcomes = await load.done;
  const counts = tally(outcomes);
  t.log(`under load: ${JSON.stringify(counts)}`);
  t.false(outcomes.some((o) => o.status === null || o.status >= 500), `no 5xx, no connection errors: ${JSON.stringify(counts)}`);
  const lastTen = outcomes.filter((o) => o.status === 200 && o.at >= 20_000).length / 10;
  t.log(`goodput over the last 10 s: ${lastTen.toFixed(1)}/s, ${(lastTen / singlePerSecond).toFixed(2)}× one replica`);
  t.true(lastTen >= 2.5 * singlePerSecond, `goodput ${lastTen}/s at 3 replicas vs ${singlePerSecond}/s at 1`);

  // The load is over: one replica at a time, back to the minimum within the window plus a margin.
  const calm = await replicasAtHub(s, id, 'auto', 1, 10_000 + 40_000);
  const decision = serviceOn(calm, 'auto')!.lastScale;
  t.truthy(decision, 'the hub shows the last scaling decision');
  t.is(decision!.to, 1);
  await waitFor('one container left', async () => (await containersOf(id, 'auto')).length === 1, 30_000, 250);

  // Telemetry counted the decisions.
  const telemetry = await waitFor(
    'scaling decisions in telemetry',
    async () => {
      const r = await s.cli('telemetry', 'auto', '--json');
      if (r.code !== 0) return undefined;
      const text = r.stdout;
      return /"up":\s*[1-9]/.test(text) && /"down":\s*[1-9]/.test(text) ? text : undefined;
    },
    60_000,
    1000,
  );
  t.truthy(telemetry);
});

test.serial('--replicas 2: both replicas serve, neither more than 65 % of 200 requests sent in pairs', async (t) => {
  t.timeout(LONG);
  const s = await shared(t);
  const { id } = await device(t, s);
  const deployed = await deploy(t, s, 'pair', id, ['--replicas', '2']);
  const d = await replicasAtHub(s, id, 'pair', 2);
  const boxes = await containersOf(id, 'pair');
  t.is(boxes.length, 2);
  const since = new Date().toISOString();
  const send = async () => {
    const res = await request(scoreUrl(d, 'pair'), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${deployed.key}` }, body: JSON.stringify({ ...s.sample, fixture: 'slow' }) });
    await res.body.dump();
    return res.statusCode;
  };
  for (let i = 0; i < 100; i++) t.deepEqual(await Promise.all([send(), send()]), [200, 200]);
  // Each slow request logs one line in the container that ran it.
  const served = await Promise.all(boxes.map(async (b) => ((await exec('docker', ['logs', '--since', since, b.id])).stdout.match(/fixture: slow run started/g) ?? []).length));
  t.log(`requests per replica: ${served.join(', ')}`);
  t.is(served[0]! + served[1]!, 200);
  for (const n of served) t.true(n <= 130, `one replica took ${n} of 200`);
});

test.serial('a replica killed under load: only its requests in flight fail, later ones succeed, a replacement becomes ready', async (t) => {
  t.timeout(LONG);
  const s = await shared(t);
  const { id } = await device(t, s);
  const deployed = await deploy(t, s, 'sturdy', id, ['--replicas', '2']);
  const d = await replicasAtHub(s, id, 'sturdy', 2);
  const [victim] = await containersOf(id, 'sturdy');
  const load = startLoad({ url: scoreUrl(d, 'sturdy'), key: deployed.key, body: { ...s.sample, fixture: 'slow' }, clients: 4, durationMs: 60_000 });
  await waitFor('the load to be served', () => load.outcomes.filter((o) => o.status === 200).length >= 10, 30_000, 100);
  const killedAt = load.outcomes.length;
  await exec('docker', ['kill', victim!.id]);
  // A replacement: two ready replicas again, the victim not among them.
  await waitFor(
    'a replacement replica',
    async () => {
      const dev = await deviceOf(s.hub, id);
      const running = (await containersOf(id, 'sturdy')).filter((c) => c.running);
      return serviceOn(dev, 'sturdy')?.replicas?.ready === 2 && running.length === 2 && running.every((c) => c.id !== victim!.id);
    },
    LONG,
    250,
  );
  const afterReplacement = load.outcomes.length;
  await waitFor('more requests after the replacement', () => load.outcomes.length >= afterReplacement + 20, 30_000, 100);
  const outcomes = await load.stop();
  const failed = outcomes.filter((o) => o.status !== 200 && o.status !== 429);
  t.log(`outcomes: ${JSON.stringify(tally(outcomes))}`);
  // maxConcurrent 1: one request at most was inside the killed replica (two if a second was on its way in).
  t.true(failed.length <= 2, `failed: ${JSON.stringify(failed)}`);
  t.true(failed.every((o) => o.status === 502), 'a request inside the killed replica gets 502');
  t.true(outcomes.slice(killedAt + failed.length + 4).every((o) => o.status === 200 || o.status === 429), 'requests after the kill succeed');
});

test.serial('resource guard: replicas are added only as far as their memory limit fits in what the device has', async (t) => {
  t.timeout(LONG);
  const s = await shared(t);
  // Named as what it is: the agent is told to assume 700 MiB for replicas, not the machine's memory.
  const { id } = await device(t, s, ['--assume-memory', '700m', '--memory-margin', '128m']);
  const deployed = await deploy(t, s, 'guarded', id, ['--min-replicas', '1', '--max-replicas', '3', '--memory', '256m']);
  const d = await replicasAtHub(s, id, 'guarded', 1);
  const load = startLoad({ url: scoreUrl(d, 'guarded'), key: deployed.key, body: { ...s.sample, fixture: 'slow' }, clients: 12, durationMs: 120_000 });
  try {
    // 700 − 256 (one replica) − 128 margin leaves room for a second; a third would not fit.
    const held = await waitFor(
      'the guard to hold at 2 replicas with a reason',
      async () => {
        const svc = serviceOn(await deviceOf(s.hub, id), 'guarded');
        return svc?.replicas?.ready === 2 && svc.replicas.capacity ? svc : undefined;
      },
      90_000,
      250,
    );
    t.regex(held.replicas!.capacity!, /^capacity: /);
    t.is(held.replicas!.desired, 2);
    t.is((await containersOf(id, 'guarded')).length, 2);
  } finally {
    await load.stop();
  }
});
