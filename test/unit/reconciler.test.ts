/**
 * The agent's reconcile loop (agent/reconcile/reconciler.ts) against the fake container runtime,
 * health probe and port allocator (test/helpers/fake-container-runtime.ts): no Docker, no sockets.
 * Docker itself is exercised by the integration tests.
 */
import test from 'ava';
import { PromotedContainers, type RecordStore } from '../../agent/reconcile/promoted-containers.js';
import { Reconciler } from '../../agent/reconcile/reconciler.js';
import type { ReplicaTarget } from '../../agent/reconcile/replica-target.js';
import { RouteTable } from '../../agent/reconcile/routes.js';
import { systemClock } from '../../shared/clock.js';
import { pino } from 'pino';
import type { DesiredService, DesiredState, ReportedState } from '../../shared/protocol.js';
import { FakeContainerRuntime, fakeHealthProbe, fakePorts } from '../helpers/fake-container-runtime.js';
import { waitFor } from '../helpers/wait.js';

const PLATFORM = 'linux/amd64';
const image = (tag: string) => `reg.example/iris@sha256:${tag.repeat(64).slice(0, 64)}`;
const svc = (revision: number, img = image(String(revision))): DesiredService => ({
  name: 'iris',
  revision,
  image: img,
  limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null },
  keyHash: 'a'.repeat(64),
  models: [],
});

/** The serving record's storage, in memory (the file is exercised by agent-crash.test.ts). */
function memoryStore(): RecordStore & { text: string | null } {
  const store = {
    text: null as string | null,
    read: async () => store.text,
    write: async (text: string) => void (store.text = text),
  };
  return store;
}

async function setup(opts: { minFreeDiskBytes?: number; healthTimeoutMs?: number; record?: string; replicas?: ReplicaTarget } = {}) {
  const runtime = new FakeContainerRuntime(PLATFORM);
  const health = fakeHealthProbe(runtime);
  const ports = fakePorts();
  const routes = new RouteTable();
  const store = memoryStore();
  if (opts.record !== undefined) store.text = opts.record;
  const promoted = await PromotedContainers.load(store, pino({ level: 'silent' }));
  const reports: ReportedState[] = [];
  let desired: DesiredState | null = null;
  const reconciler = new Reconciler({
    deviceId: 'dev-1',
    platform: PLATFORM,
    runtime,
    routes,
    promoted,
    desired: () => desired,
    report: async (s) => void reports.push(s),
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    health,
    ports,
    healthTimeoutMs: opts.healthTimeoutMs ?? 5000,
    minFreeDiskBytes: opts.minFreeDiskBytes ?? 1000,
    stopTimeoutSeconds: 1,
    resyncMs: 60_000,
    backoff: { initialMs: 50, maxMs: 100, factor: 2 },
    ...(opts.replicas ? { replicas: opts.replicas } : {}),
  });
  let generation = 0;
  /** A container left running by an earlier agent. */
  const leftover = async (s: DesiredService) => {
    runtime.local.add(s.image);
    const id = await runtime.create('dev-1', { name: `edgeml-dev-1-${s.name}-r${s.revision}`, image: s.image, platform: PLATFORM, service: s.name, revision: s.revision, generation: 1, port: await ports.next(), limits: s.limits, stopTimeoutSeconds: 1 });
    await runtime.start(id);
    return id;
  };
  const want = (...services: DesiredService[]) => {
    for (const s of services) runtime.publish(s.image);
    desired = { v: 1, generation: ++generation, services };
    reconciler.trigger();
  };
  const last = () => reports.at(-1);
  const serviceState = () => last()?.services[0];
  const stop = () => reconciler.close();
  const servingContainer = () => (JSON.parse(store.text ?? '{}') as { services?: Record<string, { containers: string[] }> }).services?.iris?.containers[0];
  return { runtime, health, routes, reports, reconciler, want, store, last, serviceState, stop, servingContainer, leftover, trigger: () => reconciler.trigger() };
}

test('a new revision is promoted (recorded) before its route switches, then the old container goes', async (t) => {
  const { runtime, routes, servingContainer, want, stop } = await setup();
  t.teardown(() => stop());
  want(svc(1));
  await waitFor('revision 1 to serve', () => routes.get('iris')?.revision === 1);
  const first = runtime.running()[0]!;
  t.is(servingContainer(), first.id);

  want(svc(2));
  await waitFor('revision 2 to serve', () => routes.get('iris')?.revision === 2);
  await waitFor('the old container to go', () => runtime.containers.size === 1);
  const second = runtime.running()[0]!;
  t.is(second.revision, 2);
  t.is(servingContainer(), second.id);
  t.is(routes.get('iris')?.replicas[0]?.port, second.port);
});

test('a desired state that changes only capture sets it on the route: no new container', async (t) => {
  const { runtime, routes, want, last, stop } = await setup();
  t.teardown(() => stop());
  want(svc(1));
  await waitFor('revision 1 to serve', () => routes.get('iris')?.revision === 1);
  const container = runtime.running()[0]!;
  const capture = { rate: 0.5, maxBodyBytes: 1024, redact: ['ssn'] };
  want({ ...svc(1), capture });
  await waitFor('the route to capture', () => routes.get('iris')?.capture);
  t.deepEqual(routes.get('iris')?.capture, capture);
  want(svc(1));
  await waitFor('capture off again', () => last()?.observedGeneration === 3 && routes.get('iris')?.capture === undefined);
  t.deepEqual(runtime.running().map((c) => c.id), [container.id]);
  t.is(runtime.containers.size, 1);
});

test('each service keeps its current and previous image; older ones are pruned once no container uses them', async (t) => {
  const { runtime, routes, want, stop } = await setup();
  t.teardown(() => stop());
  for (const r of [1, 2, 3]) {
    want(svc(r));
    await waitFor(`revision ${r} to serve`, () => routes.get('iris')?.revision === r && runtime.containers.size === 1);
  }
  await waitFor('image 1 to be pruned', () => runtime.removedImages.length === 1);
  t.deepEqual(runtime.removedImages, [image('1')]);
  t.true(runtime.local.has(image('2')), 'the previous image stays for a rollback');
  t.true(runtime.local.has(image('3')));
});

test('a service no longer desired: its container and images go', async (t) => {
  const { runtime, routes, want, stop } = await setup();
  t.teardown(() => stop());
  want(svc(1));
  await waitFor('revision 1 to serve', () => routes.get('iris')?.revision === 1);
  want();
  await waitFor('everything to go', () => runtime.containers.size === 0 && runtime.removedImages.length === 1);
  t.is(routes.get('iris'), undefined);
  t.deepEqual(runtime.removedImages, [image('1')]);
});

test('pre-flight: too little disk for the image plus the margin is rejected before any pull, and retried', async (t) => {
  const { runtime, want, serviceState, stop } = await setup({ minFreeDiskBytes: 1000 });
  t.teardown(() => stop());
  runtime.publish(image('1'), { size: 500 });
  runtime.free = 2500; // needs 500 × 4 + 1000
  want(svc(1));
  await waitFor('the service to be rejected', () => serviceState()?.phase === 'rejected');
  t.is(serviceState()?.error?.code, 'AGENT_E_DISK_FULL');
  t.regex(serviceState()?.error?.message ?? '', /only 2500 bytes free .* the image \(500 bytes compressed, unpacked too\) plus a margin of 1000; nothing was downloaded/);
  t.deepEqual(runtime.pulled, []);

  runtime.free = 3000;
  await waitFor('the retry to run it', () => serviceState()?.phase === 'running', 5000);
  t.deepEqual(runtime.pulled, [image('1')]);
});

test('pre-flight: an image of unknown size needs only the margin', async (t) => {
  const { runtime, want, serviceState, stop } = await setup({ minFreeDiskBytes: 1000 });
  t.teardown(() => stop());
  runtime.free = 999;
  want(svc(1));
  await waitFor('the service to be rejected', () => serviceState()?.phase === 'rejected');
  t.regex(serviceState()?.error?.message ?? '', /the margin of 1000 bytes \(the image size is unknown\)/);
  runtime.free = 1000;
  await waitFor('the retry to run it', () => serviceState()?.phase === 'running', 5000);
});

test('a pull that a new desired state no longer wants is abandoned at once, not counted as a failure; its pass ends without a failed report', async (t) => {
  const { runtime, routes, want, reports, stop } = await setup();
  t.teardown(() => stop());
  runtime.holdPulls.add(image('1'));
  want(svc(1));
  await waitFor('the pull to start', () => runtime.held.has(image('1')));
  want(svc(2));
  await waitFor('revision 2 to serve', () => routes.get('iris')?.revision === 2, 5000);
  t.deepEqual(runtime.pulled, [image('1'), image('2')]);
  t.false(reports.some((r) => r.services.some((s) => s.revision === 1 && s.phase === 'failed')), 'no failure reported for the abandoned revision');
  t.false(reports.some((r) => r.observedGeneration === 1 && r.phase === 'failed'), 'generation 1 never reported failed');
  t.is(runtime.containers.size, 1);
});

test('a pull still wanted is not abandoned by an unrelated desired state', async (t) => {
  const { runtime, routes, want, stop } = await setup();
  t.teardown(() => stop());
  runtime.holdPulls.add(image('1'));
  want(svc(1));
  await waitFor('the pull to start', () => runtime.held.has(image('1')));
  // Same service and revision, new generation (another service's change would look like this).
  want(svc(1));
  await new Promise((r) => setTimeout(r, 200));
  runtime.held.get(image('1'))!();
  await waitFor('revision 1 to serve', () => routes.get('iris')?.revision === 1, 5000);
  t.deepEqual(runtime.pulled, [image('1')]);
});

test('a new revision that never gets healthy is removed; the old one keeps serving and stays promoted', async (t) => {
  const { runtime, health, routes, servingContainer, want, serviceState, stop } = await setup({ healthTimeoutMs: 600 });
  t.teardown(() => stop());
  want(svc(1));
  await waitFor('revision 1 to serve', () => routes.get('iris')?.revision === 1);
  const first = runtime.running()[0]!;
  health.unhealthy.add(image('2'));
  want(svc(2));
  await waitFor('revision 2 to fail', () => serviceState()?.phase === 'failed', 5000);
  t.like(serviceState(), { revision: 2, servingRevision: 1 });
  t.is(serviceState()?.error?.code, 'AGENT_E_HEALTH_FAILED');
  t.is(routes.get('iris')?.replicas[0]?.port, first.port);
  t.is(servingContainer(), first.id);
  await waitFor('the failed container to go', () => runtime.containers.size === 1);
  t.true(runtime.containers.has(first.id));
});

test('an agent upgraded from before the record adopts its running container: nothing is redeployed', async (t) => {
  const { runtime, routes, want, stop, leftover, servingContainer } = await setup();
  t.teardown(() => stop());
  const id = await leftover(svc(1));
  want(svc(1));
  await waitFor('revision 1 to serve', () => routes.get('iris')?.revision === 1);
  t.deepEqual([...runtime.containers.keys()], [id], 'the same container');
  t.is(servingContainer(), id);
});

test('with a record, a running container it does not name is unproven: replaced, not adopted', async (t) => {
  const { runtime, routes, want, stop, leftover } = await setup({ record: JSON.stringify({ v: 1, services: {}, unused: [] }) });
  t.teardown(() => stop());
  const id = await leftover(svc(1));
  want(svc(1));
  await waitFor('revision 1 to serve from a new container', () => routes.get('iris')?.revision === 1 && !runtime.containers.has(id));
  t.is(runtime.containers.size, 1);
});

test('no desired state yet (nothing cached, no hub): running containers are left alone', async (t) => {
  const { runtime, stop, leftover, trigger, reports } = await setup({ record: JSON.stringify({ v: 1, services: {}, unused: [] }) });
  t.teardown(() => stop());
  const id = await leftover(svc(1));
  trigger();
  await waitFor('a report', () => reports.length > 0);
  t.true(runtime.containers.has(id));
  t.like(reports.at(-1), { observedGeneration: 0, phase: 'idle' });
});


test('the image of a revision that never got healthy is pruned once no service wants it', async (t) => {
  const { runtime, health, routes, want, stop, serviceState } = await setup({ healthTimeoutMs: 600 });
  t.teardown(() => stop());
  want(svc(1));
  await waitFor('revision 1 to serve', () => routes.get('iris')?.revision === 1);
  health.unhealthy.add(image('2'));
  want(svc(2));
  await waitFor('revision 2 to fail', () => serviceState()?.phase === 'failed', 5000);
  t.true(runtime.local.has(image('2')), 'kept while revision 2 is still wanted (it is retried)');
  want(svc(3));
  await waitFor('revision 3 to serve', () => routes.get('iris')?.revision === 3, 5000);
  await waitFor('the failed image to be pruned', () => runtime.removedImages.includes(image('2')));
  t.true(runtime.local.has(image('1')), 'the previous image stays for a rollback');
});

/** A ReplicaTarget whose answer the test sets (the autoscaler's place). */
function replicasAt(n: number): ReplicaTarget & { n: number } {
  const target = { n, desired: () => target.n, status: () => ({}) };
  return target;
}
const scaled = (s: DesiredService, max = 3): DesiredService => ({ ...s, scale: { minReplicas: 1, maxReplicas: max, targetUtilization: 0.7, scaleUpWindowMs: 5000, scaleDownWindowMs: 60_000 } });
const named = (name: string, s: DesiredService): DesiredService => ({ ...s, name, image: s.image.replace('iris', name) });
const ports = (routes: RouteTable, name = 'iris') => routes.get(name)?.replicas.map((r) => r.port) ?? [];

test('two services: one held in its pull, the other rolls out a new revision meanwhile, and the hub hears of it', async (t) => {
  const { runtime, routes, want, last, stop } = await setup();
  t.teardown(() => stop());
  const counter = (r: number) => named('counter', svc(r));
  want(svc(1), counter(1));
  await waitFor('both to serve', () => routes.get('iris')?.revision === 1 && routes.get('counter')?.revision === 1);
  runtime.holdPulls.add(image('2'));
  want(svc(2), counter(2));
  await waitFor('the iris pull to be held', () => runtime.held.has(image('2')));
  await waitFor('counter revision 2 to serve while iris waits', () => routes.get('counter')?.revision === 2, 5000);
  t.is(routes.get('iris')?.revision, 1, 'iris still serves revision 1');
  // Reported while the pass goes on (iris still pulls), not only when it ends.
  await waitFor('a report of counter at revision 2', () => last()?.services.find((x) => x.name === 'counter')?.servingRevision === 2, 5000);
  t.is(last()?.services.find((x) => x.name === 'iris')?.phase, 'pulling');
  runtime.held.get(image('2'))!();
  await waitFor('iris revision 2 to serve', () => routes.get('iris')?.revision === 2, 5000);
});

test('replicas: scaled up to 3 together, a new revision switches all 3 at once, scaled down one at a time; counts are reported', async (t) => {
  const target = replicasAt(3);
  const { runtime, routes, want, last, stop } = await setup({ replicas: target });
  t.teardown(() => stop());
  want(scaled(svc(1)));
  await waitFor('3 replicas to serve', () => ports(routes).length === 3);
  await waitFor('the counts to be reported', () => last()?.services[0]?.replicas?.ready === 3);
  t.deepEqual(last()?.services[0]?.replicas, { desired: 3, ready: 3 });
  const first = runtime.running().map((c) => c.id);

  const seen: number[][] = [];
  const set = routes.set.bind(routes);
  routes.set = (service, replicas) => {
    seen.push(replicas.map((r) => Number(runtime.containers.get(r.container)?.revision)));
    set(service, replicas);
  };
  want(scaled(svc(2)));
  await waitFor('revision 2 to serve on 3 replicas and the old ones to go', () => routes.get('iris')?.revision === 2 && runtime.containers.size === 3, 5000);
  t.true(seen.every((revs) => revs.every((r) => r === revs[0])), `no route mixes revisions: ${JSON.stringify(seen)}`);
  t.false(runtime.running().some((c) => first.includes(c.id)));

  target.n = 1;
  const sizes: number[] = [];
  routes.set = (service, replicas) => {
    sizes.push(replicas.length);
    set(service, replicas);
  };
  const leftRoute: boolean[] = [];
  const remove = runtime.remove.bind(runtime);
  runtime.remove = async (id) => {
    leftRoute.push(!ports(routes).includes(runtime.containers.get(id)!.port));
    await remove(id);
  };
  want(scaled(svc(2)));
  await waitFor('1 replica to serve', () => ports(routes).length === 1 && runtime.containers.size === 1, 5000);
  t.deepEqual(sizes, [2, 1], 'one at a time');
  t.deepEqual(leftRoute, [true, true], 'each out of the route before it is stopped');
  await waitFor('the counts to be reported', () => last()?.services[0]?.replicas?.ready === 1);
});

test('replicaFailed: the replica leaves the route at once and is replaced', async (t) => {
  const { runtime, routes, want, stop, reconciler, store } = await setup({ replicas: replicasAt(2) });
  t.teardown(() => stop());
  want(scaled(svc(1)));
  await waitFor('2 replicas to serve', () => ports(routes).length === 2);
  const [lost, kept] = routes.get('iris')!.replicas;
  runtime.kill(lost!.container);
  reconciler.replicaFailed(lost!.container);
  t.deepEqual(routes.get('iris')?.replicas, [kept], 'out of the route at once');
  await waitFor('a replacement to serve', () => ports(routes).length === 2 && !runtime.containers.has(lost!.container), 5000);
  t.is(routes.get('iris')?.replicas[0]?.container, kept!.container);
  t.false(store.text!.includes(lost!.container), 'no longer in the record');
});

test('changed memory and CPU limits are applied to the running replicas: same ids, no restart', async (t) => {
  const { runtime, routes, want, last, stop } = await setup({ replicas: replicasAt(2) });
  t.teardown(() => stop());
  const withLimits = (memoryBytes: number, maxQueue: number) => ({ ...scaled(svc(1)), limits: { maxConcurrent: 1, maxQueue, memoryBytes, cpus: 0.5 } });
  want(withLimits(64 * 2 ** 20, 10));
  await waitFor('2 replicas to serve', () => ports(routes).length === 2);
  const ids = runtime.running().map((c) => c.id).sort();
  want(withLimits(512 * 2 ** 20, 2));
  await waitFor('the new limits', () => runtime.running().every((c) => c.limits?.memoryBytes === 512 * 2 ** 20) && routes.get('iris')?.limits.maxQueue === 2, 5000);
  await waitFor('converged', () => last()?.observedGeneration === 2 && last()?.phase === 'converged');
  t.deepEqual(runtime.running().map((c) => c.id).sort(), ids);
  t.is(runtime.updates.length, 2);
});

test('a new revision whose replicas never get healthy: the launch fails, every new replica goes, the old replicas keep the route and the record', async (t) => {
  const { runtime, health, routes, want, serviceState, stop, store } = await setup({ replicas: replicasAt(2), healthTimeoutMs: 600 });
  t.teardown(() => stop());
  want(scaled(svc(1)));
  await waitFor('2 replicas to serve', () => ports(routes).length === 2);
  const old = routes.get('iris')!.replicas.map((r) => r.container).sort();
  health.unhealthy.add(image('2'));
  want(scaled(svc(2)));
  await waitFor('revision 2 to fail', () => serviceState()?.phase === 'failed', 5000);
  t.like(serviceState(), { revision: 2, servingRevision: 1 });
  await waitFor('the new replicas to go', () => runtime.containers.size === 2);
  t.deepEqual([...runtime.containers.keys()].sort(), old);
  t.deepEqual(routes.get('iris')!.replicas.map((r) => r.container).sort(), old);
  t.deepEqual((JSON.parse(store.text!) as { services: { iris: { containers: string[] } } }).services.iris.containers.sort(), old);
});
