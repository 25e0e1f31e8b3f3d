/**
 * One executor per kind of step (plan.ts), in a map the compiler holds complete: a new kind of step
 * does not build until it has its executor. Executors of a rollout's steps throw `EdgemlError`s
 * with the code the hub is told; the loop (reconciler.ts) decides what a failure means.
 */
import type { Clock } from '../../shared/clock.js';
import { ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ContainerRuntime } from '../runtime/container-runtime.js';
import { failure } from './failure.js';
import type { PortAllocator } from './free-port.js';
import type { HealthProbe } from './health-probe.js';
import { waitHealthy } from './health-wait.js';
import type { LaunchStage, Step, StepKind } from './plan.js';
import type { PromotedContainers } from './promoted-containers.js';
import type { Reports } from './reports.js';
import type { RouteTable } from './routes.js';

export interface ExecuteOptions {
  deviceId: string;
  platform: string;
  runtime: ContainerRuntime;
  routes: RouteTable;
  promoted: Pick<PromotedContainers, 'promote' | 'pruned' | 'pulling'>;
  health: HealthProbe;
  ports: PortAllocator;
  clock: Clock;
  logger: Logger;
  healthTimeoutMs: number;
  minFreeDiskBytes: number;
  stopTimeoutSeconds: number;
}

/** What this pass has done that the engine does not show; executors add to it. */
export interface PassProgress {
  launched: Map<string, LaunchStage>;
  retired: Set<string>;
  pulled: Set<string>;
}

export interface ExecContext {
  o: ExecuteOptions;
  reports: Reports;
  generation: number;
  /** Aborts when the rollout is no longer wanted, or the agent stops. */
  signal: AbortSignal;
  pass: PassProgress;
}

type Executor<K extends StepKind> = (step: Extract<Step, { kind: K }>, x: ExecContext) => Promise<void>;

/**
 * What a pull needs on disk, from the compressed size the registry gives: the compressed layers
 * plus their unpacked copies (about three times larger for the runtime images).
 */
const DISK_PER_COMPRESSED_BYTE = 4;

const servingOf = (previous: { revision: number } | null) => ({ servingRevision: previous?.revision ?? null });

const executors: { [K in StepKind]: Executor<K> } = {
  pull: async ({ rollout: { service, previous } }, x) => {
    const { runtime, platform, logger } = x.o;
    x.reports.setStatus(service, 'pending', servingOf(previous));
    const platforms = await runtime.platforms(service.image).catch((err: Error) => {
      throw failure(ErrorCodes.AGENT_PULL_FAILED, `cannot read ${service.image} from its registry: ${err.message}`, err);
    });
    if (!platforms.includes(platform)) {
      throw failure(ErrorCodes.AGENT_PLATFORM_UNAVAILABLE, `${service.image} has no image for ${platform} (it has ${platforms.join(', ') || 'none'}); nothing was downloaded`);
    }
    await checkDisk(x.o, service.image);
    await x.o.promoted.pulling(service.image);
    x.reports.setStatus(service, 'pulling', { ...servingOf(previous), progress: { current: 0, total: 0 } });
    x.reports.report(x.generation, 'reconciling');
    logger.info({ service: service.name, image: service.image, platform }, 'pulling');
    await runtime
      .pull(service.image, platform, (progress) => {
        x.reports.setStatus(service, 'pulling', { ...servingOf(previous), progress });
        x.reports.reportProgress(x.generation);
      }, x.signal)
      .catch((err: Error) => {
        throw failure(ErrorCodes.AGENT_PULL_FAILED, `pulling ${service.image} for ${platform} failed: ${err.message}`, err);
      });
    x.pass.pulled.add(service.image);
  },

  create: async ({ rollout: { service, previous } }, x) => {
    x.signal.throwIfAborted();
    x.reports.setStatus(service, 'starting', servingOf(previous));
    x.reports.report(x.generation, 'reconciling');
    const { deviceId, platform } = x.o;
    const port = await x.o.ports.next();
    const name = `edgeml-${deviceId}-${service.name}-r${service.revision}`;
    const id = await x.o.runtime
      .create(deviceId, { name, image: service.image, platform, service: service.name, revision: service.revision, generation: x.generation, port, limits: service.limits, stopTimeoutSeconds: x.o.stopTimeoutSeconds })
      .catch((err: Error) => {
        throw failure(ErrorCodes.AGENT_START_FAILED, `creating the container failed: ${err.message}`, err);
      });
    x.pass.launched.set(id, 'created');
  },

  start: async ({ container }, x) => {
    await x.o.runtime.start(container.id);
    x.pass.launched.set(container.id, 'started');
  },

  waitHealthy: async ({ container }, x) => {
    await waitHealthy({ runtime: x.o.runtime, health: x.o.health, clock: x.o.clock, timeoutMs: x.o.healthTimeoutMs }, container.id, container.port, x.signal);
    x.pass.launched.set(container.id, 'healthy');
  },

  route: async ({ service, to, promote }, x) => {
    // The switch. Recorded first: a crash from here on keeps this container, and only this one.
    if (promote) await x.o.promoted.promote(service, promote.container.id, promote.rollout.service.image);
    if (to) x.o.routes.set(to.service, to.replicas);
    else x.o.routes.delete(service);
    if (!promote) return;
    const { rollout, container } = promote;
    x.pass.launched.delete(container.id);
    if (rollout.previous) x.pass.retired.add(rollout.previous.id);
    x.reports.setStatus(rollout.service, 'running', { servingRevision: rollout.service.revision });
    x.o.logger.info({ service, revision: rollout.service.revision, port: container.port }, 'service switched to the new container');
  },

  drain: async ({ container: c }, x) => {
    x.o.logger.info({ service: c.service, revision: c.revision, container: c.name }, 'removing the previous container');
    // The new one serves already: a failed removal is left for the next pass, not a failed rollout.
    await x.o.runtime.remove(c.id).catch((err: Error) => x.o.logger.warn({ container: c.name, err: err.message }, 'cannot remove the previous container'));
  },

  remove: async ({ container: c }, x) => {
    x.o.logger.info({ service: c.service, revision: c.revision, container: c.name }, 'removing container');
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
