/**
 * What the reconciler relies on from a `ContainerRuntime`, as ONE suite that a test file runs once
 * per implementation: `containerRuntimeContract(subject)`. It runs against the unit tests' fake
 * (test/unit/container-runtime-contract.test.ts) and the dockerode adapter over the rig's dockerd
 * (test/integration/container-runtime-contract.test.ts), so the fake cannot drift from Docker.
 * Importing this module registers no test.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { PortAllocator } from '../../agent/reconcile/free-port.js';
import type { HealthProbe } from '../../agent/reconcile/health-probe.js';
import type { ContainerRuntime, ContainerSpec, PullProgress } from '../../agent/runtime/container-runtime.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import { waitFor } from './wait.js';

export interface ContractImages {
  /** Serves `GET /health` 200 on `$PORT` (127.0.0.1) and exits 0 on SIGTERM. */
  serving: string;
  /** Exits at once with code 3. */
  exiting: string;
  /** Published, and used by no other test: the pull test removes it from the engine first. */
  pullable: string;
  /** In no registry. */
  missing: string;
}

export interface ContractFixture {
  runtime: ContainerRuntime;
  health: HealthProbe;
  ports: PortAllocator;
  images: ContractImages;
}

export interface RuntimeUnderContract {
  name: string;
  platform: string;
  /** A runtime for one test; the suite removes the containers it makes (by device id). */
  fixture(t: ExecutionContext): Promise<ContractFixture>;
}

const LIMITS = { maxConcurrent: 1, maxQueue: 10, memoryBytes: 64 * 2 ** 20, cpus: 0.5 };

async function rejectsWith(t: ExecutionContext, promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await t.throwsAsync(promise);
  t.true(err instanceof EdgemlError, `an EdgemlError, not ${String(err)}`);
  t.is((err as EdgemlError).code, code);
}

export function containerRuntimeContract(subject: RuntimeUnderContract): void {
  const { platform } = subject;

  /** A runtime, a device of its own and a spec maker; every container of the device goes at teardown. */
  async function setup(t: ExecutionContext) {
    const f = await subject.fixture(t);
    const deviceId = `contract-${randomBytes(4).toString('hex')}`;
    t.teardown(async () => {
      for (const c of await f.runtime.list(deviceId)) await f.runtime.remove(c.id);
    });
    let n = 0;
    const spec = async (o: Partial<ContainerSpec> = {}): Promise<ContainerSpec> => ({
      name: `edgeml-${deviceId}-svc-r${++n}`,
      image: f.images.serving,
      platform,
      service: 'svc',
      revision: n,
      generation: 7,
      port: await f.ports.next(),
      limits: LIMITS,
      stopTimeoutSeconds: 30,
      ...o,
    });
    const ensureImage = async (image: string) => {
      if (!(await f.runtime.hasImage(image, platform))) await f.runtime.pull(image, platform, () => undefined, new AbortController().signal);
    };
    return { ...f, deviceId, spec, ensureImage };
  }

  test.serial(`${subject.name}: pre-flight facts — a published image offers the platform and a size; free disk is a positive number`, async (t) => {
    const { runtime, images } = await setup(t);
    t.true((await runtime.platforms(images.serving)).includes(platform));
    const size = await runtime.imageSize(images.serving, platform);
    t.true(typeof size === 'number' && size > 0, `size ${String(size)}`);
    t.true((await runtime.freeDiskBytes()) > 0);
  });

  test.serial(`${subject.name}: pull brings an image for the platform, with progress that never passes its total`, async (t) => {
    const { runtime, images } = await setup(t);
    t.true(await runtime.removeImage(images.pullable));
    t.false(await runtime.hasImage(images.pullable, platform));
    const progress: PullProgress[] = [];
    await runtime.pull(images.pullable, platform, (p) => progress.push(p), new AbortController().signal);
    t.true(await runtime.hasImage(images.pullable, platform));
    for (const p of progress) t.true(p.total > 0 && p.current >= 0 && p.current <= p.total, JSON.stringify(p));
    t.true(await runtime.removeImage(images.pullable), 'an image no container uses can be removed');
    t.false(await runtime.hasImage(images.pullable, platform));
  });

  test.serial(`${subject.name}: a pull of an image no registry has, or a cancelled one, fails with AGENT_E_PULL_FAILED`, async (t) => {
    const { runtime, images } = await setup(t);
    await rejectsWith(t, runtime.pull(images.missing, platform, () => undefined, new AbortController().signal), ErrorCodes.AGENT_PULL_FAILED);
    t.false(await runtime.hasImage(images.missing, platform));
    const cancelled = new AbortController();
    cancelled.abort(new Error('no longer wanted'));
    await rejectsWith(t, runtime.pull(images.pullable, platform, () => undefined, cancelled.signal), ErrorCodes.AGENT_PULL_FAILED);
  });

  test.serial(`${subject.name}: a created container is listed by its device with the spec's labels, not running; other devices do not see it`, async (t) => {
    const { runtime, deviceId, spec, ensureImage, images } = await setup(t);
    await ensureImage(images.serving);
    const s = await spec();
    const id = await runtime.create(deviceId, s);
    const listed = await runtime.list(deviceId);
    t.is(listed.length, 1);
    t.like(listed[0], { id, name: s.name, service: 'svc', revision: s.revision, image: s.image, port: s.port, running: false });
    t.true(Number.isFinite(listed[0]?.created));
    t.deepEqual(await runtime.list(`${deviceId}-other`), []);
    t.like(await runtime.state(id), { running: false });
  });

  test.serial(`${subject.name}: a started container runs, answers its health probe on the spec's port, and has the memory limit`, async (t) => {
    const { runtime, health, deviceId, spec, ensureImage, images } = await setup(t);
    await ensureImage(images.serving);
    const s = await spec();
    const id = await runtime.create(deviceId, s);
    await runtime.start(id);
    t.like(await runtime.state(id), { running: true });
    t.like((await runtime.list(deviceId))[0], { id, running: true });
    await waitFor('the health probe to answer ready', async () => (await health.probe(s.port, new AbortController().signal)).healthy, 30_000);
    t.is((await runtime.containerStats(id)).memoryLimitBytes, LIMITS.memoryBytes);
  });

  test.serial(`${subject.name}: update changes a running container's memory and CPU limits both ways in place (same id, still running, read back by list); a null leaves a limit as it is`, async (t) => {
    const { runtime, deviceId, spec, ensureImage, images } = await setup(t);
    await ensureImage(images.serving);
    const id = await runtime.create(deviceId, await spec());
    await runtime.start(id);
    t.like((await runtime.list(deviceId))[0], { id, limits: { memoryBytes: LIMITS.memoryBytes, cpus: LIMITS.cpus } });
    // Past twice the memory: what Docker refuses unless the swap limit moves with it.
    const raised = { memoryBytes: 5 * LIMITS.memoryBytes, cpus: 1 };
    await runtime.update(id, raised);
    t.like((await runtime.list(deviceId))[0], { id, running: true, limits: raised });
    const lowered = { memoryBytes: LIMITS.memoryBytes / 2, cpus: 0.25 };
    await runtime.update(id, lowered);
    t.like((await runtime.list(deviceId))[0], { id, running: true, limits: lowered });
    await runtime.update(id, { memoryBytes: null, cpus: 0.75 });
    t.like((await runtime.list(deviceId))[0], { id, running: true, limits: { memoryBytes: lowered.memoryBytes, cpus: 0.75 } });
    t.is((await runtime.containerStats(id)).memoryLimitBytes, lowered.memoryBytes);
    await rejectsWith(t, runtime.update('0'.repeat(64), lowered), ErrorCodes.AGENT_START_FAILED);
  });

  test.serial(`${subject.name}: remove stops a running container gracefully (well inside its stop timeout) and removes it; removing it again is no error`, async (t) => {
    const { runtime, health, deviceId, spec, ensureImage, images } = await setup(t);
    await ensureImage(images.serving);
    const s = await spec({ stopTimeoutSeconds: 30 });
    const id = await runtime.create(deviceId, s);
    await runtime.start(id);
    // As the agent does: only a container seen healthy is stopped gracefully (before that, its
    // process may not handle SIGTERM yet, and only the stop timeout ends it).
    await waitFor('the health probe to answer ready', async () => (await health.probe(s.port, new AbortController().signal)).healthy, 30_000);
    const began = Date.now();
    await runtime.remove(id);
    t.true(Date.now() - began < 15_000, `SIGTERM ended it, the stop timeout did not (${Date.now() - began} ms)`);
    t.is(await runtime.state(id), null);
    t.deepEqual(await runtime.list(deviceId), []);
    await t.notThrowsAsync(runtime.remove(id));
  });

  // Not "not running": the restart policy (unless-stopped) may have it restarting whenever it is asked.
  test.serial(`${subject.name}: a container that exits is seen with its exit code, and removable`, async (t) => {
    const { runtime, deviceId, spec, ensureImage, images } = await setup(t);
    await ensureImage(images.exiting);
    const id = await runtime.create(deviceId, await spec({ image: images.exiting }));
    await runtime.start(id);
    await waitFor('the exit code', async () => (await runtime.state(id))?.exitCode === 3, 30_000);
    t.is(typeof (await runtime.tail(id, 20)), 'string');
    await runtime.remove(id);
    t.deepEqual(await runtime.list(deviceId), []);
  });

  test.serial(`${subject.name}: logs are lines with a time and a stream; a follow ends when its signal aborts; an unknown container has none`, async (t) => {
    const { runtime, deviceId, spec, ensureImage, images } = await setup(t);
    await ensureImage(images.serving);
    const id = await runtime.create(deviceId, await spec());
    await runtime.start(id);
    const collect = async (opts: Parameters<ContainerRuntime['logs']>[1], of = id) => {
      const lines = [];
      for await (const line of runtime.logs(of, opts)) lines.push(line);
      return lines;
    };
    for (const line of await collect({ follow: false, signal: new AbortController().signal })) {
      t.false(Number.isNaN(Date.parse(line.ts)));
      t.true(line.stream === 'stdout' || line.stream === 'stderr');
      t.false(line.line.includes('\n'));
    }
    t.deepEqual(await collect({ follow: false, tail: 0, signal: new AbortController().signal }), []);
    const abort = new AbortController();
    const following = collect({ follow: true, tail: 0, signal: abort.signal });
    abort.abort();
    await t.notThrowsAsync(following);
    t.deepEqual(await collect({ follow: true, signal: new AbortController().signal }, `gone-${randomBytes(4).toString('hex')}`), []);
    await runtime.remove(id);
  });

  test.serial(`${subject.name}: an image a container uses is not removed (false)`, async (t) => {
    const { runtime, deviceId, spec, ensureImage, images } = await setup(t);
    await ensureImage(images.serving);
    await runtime.create(deviceId, await spec());
    t.false(await runtime.removeImage(images.serving));
    t.true(await runtime.hasImage(images.serving, platform));
  });

  test.serial(`${subject.name}: create from an image not on the engine, or start of an unknown container, fails with AGENT_E_START_FAILED; an unknown container has no state`, async (t) => {
    const { runtime, deviceId, spec, images } = await setup(t);
    await rejectsWith(t, runtime.create(deviceId, await spec({ image: images.missing })), ErrorCodes.AGENT_START_FAILED);
    await rejectsWith(t, runtime.start('0'.repeat(64)), ErrorCodes.AGENT_START_FAILED);
    t.is(await runtime.state('0'.repeat(64)), null);
  });
}
