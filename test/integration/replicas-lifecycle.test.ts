/**
 * Deployments that change and end, with a real hub, real agents, Docker and the registry: a new
 * image rolled out under load to 3 replicas (blue/green: only 200s and 429s), limits changed in
 * place (same containers, the 429 threshold moves), a service deleted from every device and deployed
 * again under the same name, and two services on one agent that never wait for each other.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import type { Deployment, DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import type { ReportedService } from '../../shared/protocol.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, type EdgemlProcess, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { pushVariant, startRegistryGate } from '../helpers/registry-variants.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { startLoad, tally } from '../helpers/score-load.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const SLOW_RUN_MS = 200;

interface Box {
  id: string;
  service: string;
  revision: number;
  running: boolean;
}

async function containersOf(deviceId: string, service?: string): Promise<Box[]> {
  const ids = (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`])).stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = JSON.parse((await exec('docker', ['inspect', ...ids])).stdout) as Array<{ Id: string; State: { Running: boolean }; Config: { Labels: Record<string, string> } }>;
  return inspected
    .map((c) => ({ id: c.Id, service: c.Config.Labels['io.edgeml.service']!, revision: Number(c.Config.Labels['io.edgeml.revision']), running: c.State.Running }))
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

async function device(t: ExecutionContext, s: Setup, labels: Record<string, string> = {}): Promise<{ id: string; agent: EdgemlProcess }> {
  const id = `life-${randomBytes(3).toString('hex')}`;
  devices.push(id);
  const token = await enrollDevice(s.hub, id, { dev: id, ...labels });
  const agent = await startAgent(t, { mqttUrl: `mqtt://${s.hub.mqtt}`, deviceId: id, token, extraArgs: ['--platform', 'linux/amd64', '--pull-stall-timeout', '5m'] });
  return { id, agent };
}

const serviceOn = (d: Device, name: string): ReportedService | undefined => d.services.find((x) => x.name === name);

function runningAtHub(s: Setup, deviceId: string, service: string, check: (svc: ReportedService) => boolean, timeoutMs = LONG): Promise<Device> {
  return waitFor(
    `${deviceId} to report ${service} as expected`,
    async () => {
      const d = await deviceOf(s.hub, deviceId);
      const svc = serviceOn(d, service);
      if (svc?.phase === 'rejected') throw new Error(`${deviceId} rejected ${service}: ${svc.error?.message}`);
      return d.status === 'online' && d.gateway && svc?.phase === 'running' && check(svc) ? d : undefined;
    },
    timeoutMs,
    250,
  );
}

const scoreUrl = (d: Device, service: string) => `${d.gateway}/v1/services/${service}/score`;

async function deploy(t: ExecutionContext, s: Setup, service: string, target: string, flags: string[] = [], image = ['--build', String(s.image.id)]): Promise<DeploymentCreated> {
  return jsonOf<DeploymentCreated>(t, await s.cli('deploy', service, ...image, '--target', target, '--max-concurrent', '1', '--max-queue', '10', ...flags, '--json'));
}

/** `n` requests at once; their statuses. */
async function burst(url: string, key: string, body: unknown, n: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
      await res.body.dump();
      return res.statusCode;
    }),
  );
}

test.serial('service update of the image under load with 3 replicas: every answer is 200 or 429', async (t) => {
  t.timeout(LONG);
  const s = await shared(t);
  const { id } = await device(t, s);
  const deployed = await deploy(t, s, 'busy', `dev=${id}`, ['--replicas', '3']);
  const d = await runningAtHub(s, id, 'busy', (svc) => svc.replicas?.ready === 3);
  const next = await pushVariant(rig().registry, s.image.ref!, 'linux/amd64', { env: ['EDGEML_TEST_VARIANT=2'] });
  const repo = s.image.ref!.slice(0, s.image.ref!.indexOf('@'));

  const load = startLoad({ url: scoreUrl(d, 'busy'), key: deployed.key, body: { ...s.sample, fixture: 'slow' }, clients: 8, durationMs: LONG });
  await waitFor('the load to be served', () => load.outcomes.filter((o) => o.status === 200).length >= 10, 30_000, 100);
  t.is((await s.cli('service', 'update', 'busy', '--image', `${repo}@${next.digest}`)).code, 0);
  await runningAtHub(s, id, 'busy', (svc) => svc.revision === 2 && svc.servingRevision === 2 && svc.replicas?.ready === 3);
  await waitFor('the old replicas to go', async () => (await containersOf(id, 'busy')).every((c) => c.revision === 2), LONG, 250);
  const served = load.outcomes.length;
  await waitFor('more requests on the new revision', () => load.outcomes.length >= served + 20, 30_000, 100);
  const outcomes = await load.stop();
  const counts = tally(outcomes);
  t.log(JSON.stringify(counts));
  t.deepEqual(Object.keys(counts).filter((k) => k !== '200' && k !== '429'), [], `only 200 and 429: ${JSON.stringify(counts)}`);
  t.is((await containersOf(id, 'busy')).length, 3);
});

test.serial('service update --max-queue 2 applies in place: the same containers, and the 429 threshold moves', async (t) => {
  t.timeout(LONG);
  const s = await shared(t);
  const { id } = await device(t, s);
  const deployed = await deploy(t, s, 'queue', `dev=${id}`);
  const d = await runningAtHub(s, id, 'queue', (svc) => svc.replicas?.ready === 1);
  const before = (await containersOf(id, 'queue')).map((c) => c.id);
  const body = { ...s.sample, fixture: 'slow' };
  // 1 in flight and 10 waiting: of 14 at once, 3 are refused.
  t.is((await burst(scoreUrl(d, 'queue'), deployed.key, body, 14)).filter((x) => x === 429).length, 3);

  const updated = jsonOf<Deployment>(t, await s.cli('service', 'update', 'queue', '--max-queue', '2', '--json'));
  t.is(updated.revision, 1, 'limits are not a new revision');
  t.is(updated.limits.maxQueue, 2);
  await waitFor(
    'the gateway to take the new limit',
    async () => {
      const res = await request(`${d.gateway}/v1/services`, { headers: { authorization: `Bearer ${deployed.key}` } });
      const listed = (await res.body.json()) as { services: Array<{ name: string; limits: { maxQueue: number } }> };
      return listed.services.find((x) => x.name === 'queue')?.limits.maxQueue === 2;
    },
    60_000,
    250,
  );
  // 1 in flight and 2 waiting: of 14 at once, 11 are refused.
  t.is((await burst(scoreUrl(d, 'queue'), deployed.key, body, 14)).filter((x) => x === 429).length, 11);
  t.deepEqual((await containersOf(id, 'queue')).map((c) => c.id), before, 'no container was replaced');

  // Memory and CPUs change in place too (docker update).
  t.is((await s.cli('service', 'update', 'queue', '--memory', '300m', '--cpus', '0.5')).code, 0);
  await waitFor(
    'docker update of the container',
    async () => {
      const [c] = JSON.parse((await exec('docker', ['inspect', before[0]!])).stdout) as Array<{ HostConfig: { Memory: number; NanoCpus: number } }>;
      return c!.HostConfig.Memory === 300 * 1024 * 1024 && c!.HostConfig.NanoCpus === 5e8;
    },
    60_000,
    250,
  );
  t.deepEqual((await containersOf(id, 'queue')).map((c) => c.id), before, 'still the same container');
});

test.serial('service delete: gone from every device (containers, route: 404), history kept; the name can be deployed again', async (t) => {
  t.timeout(LONG);
  const s = await shared(t);
  const site = `site-${randomBytes(2).toString('hex')}`;
  const [a, b] = await Promise.all([device(t, s, { site }), device(t, s, { site })]);
  const deployed = await deploy(t, s, 'doomed', `site=${site}`, ['--replicas', '2']);
  const [da, db] = await Promise.all([a, b].map((x) => runningAtHub(s, x.id, 'doomed', (svc) => svc.replicas?.ready === 2)));

  const deleted = await s.cli('service', 'delete', 'doomed', '--yes', '--json');
  t.is(deleted.code, 0, deleted.stderr);
  for (const [x, dev] of [[a, da], [b, db]] as const) {
    await waitFor(`${x.id} to remove the containers`, async () => (await containersOf(x.id, 'doomed')).length === 0, LONG, 250);
    const res = await request(scoreUrl(dev!, 'doomed'), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${deployed.key}` }, body: JSON.stringify(s.sample) });
    await res.body.dump();
    t.is(res.statusCode, 404);
    await waitFor(`${x.id} to report no service`, async () => serviceOn(await deviceOf(s.hub, x.id), 'doomed') === undefined, 60_000, 250);
  }
  const shown = await s.cli('service', 'show', 'doomed', '--json');
  t.regex(shown.stdout + shown.stderr, /deleted/i, 'the hub keeps the history, shown as deleted');

  const again = await deploy(t, s, 'doomed', `site=${site}`);
  t.not(again.key, deployed.key);
  await Promise.all([a, b].map((x) => runningAtHub(s, x.id, 'doomed', (svc) => svc.replicas?.ready === 1)));
});

test.serial('two services on one agent: a pull held at the registry for one never delays the update of the other', async (t) => {
  t.timeout(LONG);
  const s = await shared(t);
  const { registry } = rig();
  const gate = await startRegistryGate(registry);
  t.teardown(async () => {
    gate.release();
    await gate.close();
  });
  const { id } = await device(t, s);
  await deploy(t, s, 'first', `dev=${id}`);
  await deploy(t, s, 'second', `dev=${id}`);
  await Promise.all(['first', 'second'].map((svc) => runningAtHub(s, id, svc, (x) => x.replicas?.ready === 1)));
  const repoPath = s.image.ref!.slice(s.image.ref!.indexOf('/') + 1, s.image.ref!.indexOf('@'));
  const held = await pushVariant(registry, s.image.ref!, 'linux/amd64', { layerBytes: 256 * 1024 });
  const free = await pushVariant(registry, s.image.ref!, 'linux/amd64', { layerBytes: 256 * 1024 });
  gate.hold(held.layer!);

  t.is((await s.cli('service', 'update', 'first', '--image', `${gate.host}/${repoPath}@${held.digest}`)).code, 0);
  await waitFor('the pull of first to reach the held layer', () => gate.heldRequests() >= 1, LONG, 100);
  t.is((await s.cli('service', 'update', 'second', '--image', `${registry}/${repoPath}@${free.digest}`)).code, 0);
  await runningAtHub(s, id, 'second', (svc) => svc.servingRevision === 2 && svc.replicas?.ready === 1);
  const dev = await deviceOf(s.hub, id);
  t.is(serviceOn(dev, 'first')?.phase, 'pulling', `first is still pulling: ${JSON.stringify(serviceOn(dev, 'first'))}`);
  t.is(serviceOn(dev, 'first')?.servingRevision, 1, 'and its revision 1 serves meanwhile');

  gate.release();
  await runningAtHub(s, id, 'first', (svc) => svc.servingRevision === 2);
});
