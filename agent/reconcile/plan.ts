/**
 * What to do next to bring the device's containers to its desired services, as a pure function of
 * both: so every situation a crash can leave (duplicates, a new container that never started or was
 * never seen healthy, an old one still serving, a service no longer wanted) has one answer, tested
 * without Docker. It returns only the next wave of steps; the loop runs them, reads the engine again
 * and plans again, until nothing is left to do.
 *
 * Only a promoted container (one the agent saw healthy and switched the route to, recorded on disk)
 * is trusted to serve. A container that runs but was never promoted may be a bad revision whose
 * health check a crash interrupted: `unless-stopped` keeps it "running", so running proves nothing.
 * The one exception is a container this agent launched in this pass (`PlanContext.launched`): the
 * rollout that made it is still walking it through start and /health.
 */
import { isDeepStrictEqual } from 'node:util';
import type { DesiredService } from '../../shared/protocol.js';
import type { ManagedContainer } from '../runtime/container-runtime.js';
import { routeOf, type Replica, type Route } from './routes.js';

/** A service's move to its desired revision; `previous` keeps serving until the switch (blue/green). */
export interface Rollout {
  service: DesiredService;
  previous: ManagedContainer | null;
}

export type Step =
  /** Pre-flight (platform, disk), then the download. */
  | { kind: 'pull'; rollout: Rollout }
  | { kind: 'create'; rollout: Rollout }
  | { kind: 'start'; rollout: Rollout; container: ManagedContainer }
  | { kind: 'waitHealthy'; rollout: Rollout; container: ManagedContainer }
  /** Points the gateway at a container (`to`), or drops the route; with `promote`, the switch of a rollout. */
  | { kind: 'route'; service: string; to: { service: DesiredService; replicas: Replica[] } | null; promote: { rollout: Rollout; container: ManagedContainer } | null }
  /** A container that served until a switch replaced it: stopped gracefully (it finishes requests in flight), removed. */
  | { kind: 'drain'; container: ManagedContainer }
  /** A container nothing wants or trusts. */
  | { kind: 'remove'; container: ManagedContainer }
  /** An image out of every service's history. */
  | { kind: 'prune'; image: string };

export type StepKind = Step['kind'];

/** Where a launched container has got to in its rollout. */
export type LaunchStage = 'created' | 'started' | 'healthy';

/** The device as read from the engine and the serving record, before each wave. */
export interface Current {
  containers: readonly ManagedContainer[];
  /** Containers the serving record trusts (promoted-containers.ts). */
  promoted: ReadonlySet<string>;
  /** Desired images already on the engine for the device's platform. */
  localImages: ReadonlySet<string>;
  /** Images no service keeps that are still on the engine. */
  unusedImages: readonly string[];
  routes: readonly Route[];
}

/** What the loop knows that the engine does not say: this pass's progress, and the failures' backoff. */
export interface PlanContext {
  launched: ReadonlyMap<string, LaunchStage>;
  /** Containers a switch in this pass replaced. */
  retired: ReadonlySet<string>;
  /** Images pulled in this pass (an engine may describe an index by another platform than the one pulled). */
  pulled: ReadonlySet<string>;
  /** Rollouts (`rolloutKey`) that may not run now: rejected, waiting out a backoff, or failed in this pass. */
  blocked: ReadonlySet<string>;
  /** Removals and prunings (`cleanupKey`) tried in this pass: one that failed waits for the next pass. */
  attempted: ReadonlySet<string>;
  /** Images the newest desired state wants (it may be newer than the target): never pruned. */
  keepImages: ReadonlySet<string>;
}

/** With the image: after a new hub epoch a revision number may come back with another image. */
export function rolloutKey(service: DesiredService): string {
  return `${service.name}@${service.revision}@${service.image}`;
}

export function cleanupKey(step: Extract<Step, { kind: 'drain' | 'remove' | 'prune' }>): string {
  return step.kind === 'prune' ? `image:${step.image}` : `container:${step.container.id}`;
}

/** The trusted container serving this service now, if any. */
export function servingContainer(service: DesiredService, current: Pick<Current, 'containers' | 'promoted'>): ManagedContainer | null {
  return current.containers.find((c) => c.service === service.name && c.running && current.promoted.has(c.id)) ?? null;
}

/** Whether the service's desired revision already serves. */
export function isServed(service: DesiredService, current: Pick<Current, 'containers' | 'promoted'>): boolean {
  const serving = servingContainer(service, current);
  return serving !== null && serving.revision === service.revision && serving.image === service.image;
}

export function plan(current: Current, target: readonly DesiredService[], ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  const wanted = new Set(target.map((s) => s.name));
  const dispose = (container: ManagedContainer) => steps.push({ kind: ctx.retired.has(container.id) ? 'drain' : 'remove', container });
  const routeTo = (service: DesiredService, replicas: Replica[]) => {
    const now = current.routes.find((r) => r.service === service.name);
    if (!isDeepStrictEqual(now, routeOf(service, replicas))) steps.push({ kind: 'route', service: service.name, to: { service, replicas }, promote: null });
  };
  const replica = (c: ManagedContainer): Replica[] => [{ container: c.id, port: c.port }];

  for (const c of current.containers) if (!wanted.has(c.service)) dispose(c);
  for (const r of current.routes) if (!wanted.has(r.service)) steps.push({ kind: 'route', service: r.service, to: null, promote: null });

  // One rollout at a time, in the desired order; one that may not run now lets the next go.
  let rolling = false;
  for (const service of target) {
    const serving = servingContainer(service, current);
    const served = isServed(service, current);
    const launched = served ? undefined : current.containers.find((c) => c.service === service.name && ctx.launched.has(c.id) && c.revision === service.revision && c.image === service.image);
    for (const c of current.containers) if (c.service === service.name && c !== serving && c !== launched) dispose(c);
    if (served) {
      routeTo(service, replica(serving!));
      continue;
    }
    if (serving && serving.revision !== service.revision) {
      // The old container serves on with its own models, as far as the agent knows them: after a
      // restart it does not, and captures are filed without a model rather than under the new one.
      const prior = current.routes.find((r) => r.service === service.name);
      const models = prior?.replicas.some((r) => r.container === serving.id) ? prior.models : [];
      routeTo({ ...service, revision: serving.revision, image: serving.image, models }, replica(serving));
    }
    if (rolling || ctx.blocked.has(rolloutKey(service))) continue;
    rolling = true;
    steps.push(nextRolloutStep({ service, previous: serving }, launched, current, ctx));
  }

  const inUse = new Set(current.containers.map((c) => c.image));
  const targetImages = new Set(target.map((s) => s.image));
  for (const image of current.unusedImages) {
    if (!inUse.has(image) && !targetImages.has(image) && !ctx.keepImages.has(image)) steps.push({ kind: 'prune', image });
  }
  return steps.filter((s) => !(s.kind === 'drain' || s.kind === 'remove' || s.kind === 'prune') || !ctx.attempted.has(cleanupKey(s)));
}

function nextRolloutStep(rollout: Rollout, launched: ManagedContainer | undefined, current: Current, ctx: PlanContext): Step {
  if (!launched) {
    // An image already here needs no registry: a device offline can still recreate its container.
    const here = current.localImages.has(rollout.service.image) || ctx.pulled.has(rollout.service.image);
    return here ? { kind: 'create', rollout } : { kind: 'pull', rollout };
  }
  switch (ctx.launched.get(launched.id)) {
    case 'created':
      return { kind: 'start', rollout, container: launched };
    case 'started':
      return { kind: 'waitHealthy', rollout, container: launched };
    default:
      return { kind: 'route', service: rollout.service.name, to: { service: rollout.service, replicas: [{ container: launched.id, port: launched.port }] }, promote: { rollout, container: launched } };
  }
}
