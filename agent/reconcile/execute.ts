/**
 * One executor per kind of step (plan.ts), in a map the compiler holds complete: a new kind of step
 * does not build until it has its executor. Executors of a rollout's steps throw `EdgemlError`s
 * with the code the hub is told; the loop (reconciler.ts) decides what a failure means.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ContainerRuntime, ManagedContainer } from '../runtime/container-runtime.js';
import { failure } from './failure.js';
import type { PortAllocator } from './free-port.js';
import type { HealthProbe } from './health-probe.js';
import { waitHealthy } from './health-wait.js';
import type { LaunchStage, Rollout, Step, StepKind } from './plan.js';
import type { PromotedContainers } from './promoted-containers.js';
import type { Reports } from './reports.js';
import type { Replica, RouteTable } from './routes.js';

export interface ExecuteOptions {
  deviceId: string;
  platform: string;
  runtime: ContainerRuntime;
  routes: RouteTable;
  promoted: Pick<PromotedContainers, 'promote' | 'admit' | 'forget' | 'pruned' | 'pulling'>;
  health: HealthProbe;
  ports: PortAllocator;
  clock: Clock;
  logger: Logger;
  healthTimeoutMs: number;
  minFreeDiskBytes: number;
  stopTimeoutSeconds: number;
}

/** What a service's lane has done in this pass that the engine does not show; executors add to it. */
export interface PassProgress {
  launched: Map<string, LaunchStage>;
  retired: Set<string>;
  pulled: Set<string>;
}

export interface ExecContext {
  o: ExecuteOptions;
  reports: Reports;
  generation: number;
  /** Aborts when the rollout is no longer wanted, a sibling replica failed, or the agent stops. */
  signal: AbortSignal;
  pass: PassProgress;
  /** Replicas the gateway lost (Reconciler.replicaFailed): kept out of every route set. */
  ejected: ReadonlySet<string>;
}

type Executor<K extends StepKind> = (step: Extract<Step, { kind: K }>, x: ExecContext) => Promise<void>;

/**
 * What a pull needs on disk, from the compressed size the registry gives: the compressed layers
 * plus their unpacked copies (about three times larger for the runtime images).
 */
const DISK_PER_COMPRESSED_BYTE = 4;

const servingOf = ({ previous }: Rollout) => ({ servingRevision: previous[0]?.revision ?? null });
/** Replicas added to a revision that serves already: the service's phase stays `running`. */
const scaling = ({ service, previous }: Rollout) => previous.some((p) => p.revision === service.revision && p.image === service.image);

const ids = (containers: readonly ManagedContainer[]) => containers.map((c) => c.id);
/** A replica the gateway lost while the step ran does not go back into the route. */
const live = (replicas: readonly Replica[], x: ExecContext) => replicas.filter((r) => !x.ejected.has(r.container));

const executors: { [K in StepKind]: Executor<K> } = {
  pull: async ({ rollout }, x) => {
    const { service } = rollout;
    const { runtime, platform, logger } = x.o;
    x.reports.setStatus(service, 'pending', servingOf(rollout));
    const platforms = await runtime.platforms(service.image).catch((err: Error) => {
      throw failure(ErrorCodes.AGENT_PULL_FAILED, `cannot read ${service.image} from its registry: ${err.message}`, err);
    });
    if (!platforms.includes(platform)) {
      throw failure(ErrorCodes.AGENT_PLATFORM_UNAVAILABLE, `${service.image} has no image for ${platform} (it has ${platforms.join(', ') || 'none'}); nothing was downloaded`);
    }
    await checkDisk(x.o, service.image);
    await x.o.promoted.pulling(service.image);
    x.reports.setStatus(service, 'pulling', { ...servingOf(rollout), progress: { current: 0, total: 0 } });
    x.reports.report(x.generation, 'reconciling');
    logger.info({ service: service.name, image: service.image, platform }, 'pulling');
    await runtime
      .pull(service.image, platform, (progress) => {
        x.reports.setStatus(service, 'pulling', { ...servingOf(rollout), progress });
        x.reports.reportSoon(x.generation);
      }, x.signal)
      .catch((err: Error) => {
        throw failure(ErrorCodes.AGENT_PULL_FAILED, `pulling ${service.image} for ${platform} failed: ${err.message}`, err);
      });
    x.pass.pulled.add(service.image);
  },

  create: async ({ rollout }, x) => {
    const { service } = rollout;
    x.signal.throwIfAborted();
    if (!scaling(rollout)) {
      x.reports.setStatus(service, 'starting', servingOf(rollout));
      x.reports.report(x.generation, 'reconciling');
    }
    const { deviceId, platform } = x.o;
    const port = await x.o.ports.next();
    // A suffix per replica: replicas of one revision run side by side, and a name is never reused while its container drains.
    const name = `edgeml-${deviceId}-${service.name}-r${service.revision}-${randomBytes(3).toString('hex')}`;
    const id = await x.o.runtime
      .create(deviceId, { name, image: service.image, platform, service: service.name, revision: service.revision, generation: x.generation, port, limits: service.limits, stopTimeoutSeconds: x.o.stopTimeoutSeconds })
      .catch((err: Error) => {
        throw failure(ErrorCodes.AGENT_START_FAILED, `creating the container failed: ${err.message}`, err);
      });
    x.pass.launched.set(id, 'created');
  },

  start: async ({ container }, x) => {
    x.signal.throwIfAborted();
    await x.o.runtime.start(container.id);
    x.pass.launched.set(container.id, 'started');
  },

  waitHealthy: async ({ container }, x) => {
    await waitHealthy({ runtime: x.o.runtime, health: x.o.health, clock: x.o.clock, timeoutMs: x.o.healthTimeoutMs }, container.id, container.port, x.signal);
    x.pass.launched.set(container.id, 'healthy');
  },

  switch: async ({ rollout, containers }, x) => {
    const { service } = rollout;
    // Recorded first: a crash from here on keeps these replicas, and only these.
    await x.o.promoted.promote(service.name, ids(containers), service.image);
    x.o.routes.set(service, live(containers.map((c) => ({ container: c.id, port: c.port })), x));
    for (const c of containers) x.pass.launched.delete(c.id);
    for (const p of rollout.previous) x.pass.retired.add(p.id);
    x.reports.setStatus(service, 'running', { servingRevision: service.revision });
    // Other services' lanes may keep the pass going for long (a slow pull): the hub hears of this one now.
    x.reports.reportSoon(x.generation);
    x.o.logger.info({ service: service.name, revision: service.revision, replicas: containers.map((c) => c.port) }, 'service switched to the new replicas');
  },

  join: async ({ rollout: { service }, containers, replicas }, x) => {
    await x.o.promoted.admit(service.name, ids(containers), service.image);
    x.o.routes.set(service, live(replicas, x));
    for (const c of containers) x.pass.launched.delete(c.id);
    // Clears the error of an earlier replica that failed to join.
    x.reports.setStatus(service, 'running', { servingRevision: service.revision });
    x.reports.reportSoon(x.generation);
    x.o.logger.info({ service: service.name, revision: service.revision, joined: containers.map((c) => c.port), replicas: replicas.length }, 'replicas joined the route');
  },

  leave: async ({ service, container: c, replicas }, x) => {
    // Out of the route before anything else: no new request reaches it while it drains.
    x.o.routes.set(service, live(replicas, x));
    await x.o.promoted.forget([c.id]);
    x.pass.retired.add(c.id);
    x.o.logger.info({ service: service.name, revision: c.revision, container: c.name, replicas: replicas.length }, 'replica left the route (scaling down)');
  },

  route: async ({ service, to }, x) => {
    if (to) x.o.routes.set(to.service, live(to.replicas, x));
    else x.o.routes.delete(service);
  },

  resize: async ({ container: c, limits }, x) => {
    x.o.logger.info({ service: c.service, container: c.name, from: c.limits, to: limits }, 'changing the limits of a running replica');
    // It serves on with the old limits: retried by the next pass.
    await x.o.runtime.update(c.id, limits).catch((err: Error) => x.o.logger.warn({ container: c.name, err: err.message }, 'cannot change the limits of a replica'));
  },

  drain: async ({ container: c }, x) => {
    x.o.logger.info({ service: c.service, revision: c.revision, container: c.name }, 'draining a replica out of the route');
    // The others serve: a failed removal is left for the next pass, not a failed rollout.
    await x.o.runtime.remove(c.id).catch((err: Error) => x.o.logger.warn({ container: c.name, err: err.message }, 'cannot remove a drained replica'));
  },

  remove: async ({ container: c }, x) => {
    x.o.logger.info({ service: c.service, revision: c.revision, container: c.name, running: c.running }, 'removing container');
    // A promoted replica found stopped is no longer trusted, whatever happens to the removal.
    await x.o.promoted.forget([c.id]);
    // One container that cannot be removed now is retried by the next pass; the others go on.
    await x.o.runtime.remove(c.id).catch((err: Error) => x.o.logger.warn({ container: c.name, err: err.message }, 'cannot remove a container'));
  },

  prune: async ({ image }, x) => {
    try {
      // False: a container (maybe another agent's, on a shared engine) still uses it; kept for now.
      if (!(await x.o.runtime.removeImage(image))) return;
      await x.o.promoted.pruned(image);
      x.o.logger.info({ image }, 'pruned an image no service keeps');
    } catch (err) {
      x.o.logger.warn({ image, err: (err as Error).message }, 'cannot prune an image');
    }
  },
};

export function execute(step: Step, x: ExecContext): Promise<void> {
  return (executors[step.kind] as Executor<StepKind>)(step, x);
}

/** Free disk must hold the image and still leave the margin; an image of unknown size needs only the margin. */
async function checkDisk(o: ExecuteOptions, image: string): Promise<void> {
  const [free, size] = await Promise.all([o.runtime.freeDiskBytes(), o.runtime.imageSize(image, o.platform)]);
  const needed = (size ?? 0) * DISK_PER_COMPRESSED_BYTE + o.minFreeDiskBytes;
  if (free >= needed) return;
  const what = size === null ? `the margin of ${o.minFreeDiskBytes} bytes (the image size is unknown)` : `about ${needed} bytes: the image (${size} bytes compressed, unpacked too) plus a margin of ${o.minFreeDiskBytes}`;
  throw failure(ErrorCodes.AGENT_DISK_FULL, `only ${free} bytes free where Docker keeps images; the pull needs ${what}; nothing was downloaded`);
}
