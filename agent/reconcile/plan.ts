/**
 * What to do next to bring the device's containers to its desired services, as a pure function of
 * both: so every situation a crash can leave (duplicates, a new replica that never started or was
 * never seen healthy, old replicas still serving, a service no longer wanted) has one answer, tested
 * without Docker. It returns only the next wave of steps; the loop runs them, reads the engine again
 * and plans again, until nothing is left to do. Each service is planned on its own (`planService`):
 * the loop runs each service's steps in a lane of its own, so one service's slow pull never waits on
 * another's.
 *
 * A service runs N replicas (`PlanContext.replicas`), each its own container on its own port. Only a
 * promoted replica (one the agent saw healthy and recorded before it entered the route) is trusted
 * to serve. A container that runs but was never promoted may be a bad revision whose health check a
 * crash interrupted: `unless-stopped` keeps it "running", so running proves nothing. The exception
 * is a container this agent launched in this pass (`PlanContext.launched`): its launch is still
 * walking it through start and /health.
 *
 * - Steady state (the desired revision serves): missing replicas are launched together and join the
 *   route once healthy; extra ones leave one at a time (out of the route first, then drained, then
 *   the next); memory and CPU limits that changed are applied in place (`resize`).
 * - A new revision (blue/green): as many new replicas as serve now (at least N, at most max) are
 *   launched; once ALL are healthy they replace the old ones in the record and the route at once
 *   (`switch`), and the old ones are drained.
 */
import { isDeepStrictEqual } from 'node:util';
import { scaleOf, type DesiredService } from '../../shared/protocol.js';
import type { ContainerLimits, ManagedContainer } from '../runtime/container-runtime.js';
import { clampReplicas } from './replica-target.js';
import { routeOf, type Replica, type Route } from './routes.js';

/**
 * Replicas of a service being launched. `previous` serve until then: another revision's (blue/green,
 * or none for a first rollout), or the same revision's when the service is scaling up.
 */
export interface Rollout {
  service: DesiredService;
  previous: readonly ManagedContainer[];
}

export type Step =
  /** Pre-flight (platform, disk), then the download. */
  | { kind: 'pull'; rollout: Rollout }
  /** One new replica (a wave holds one per replica wanted). */
  | { kind: 'create'; rollout: Rollout }
  | { kind: 'start'; rollout: Rollout; container: ManagedContainer }
  | { kind: 'waitHealthy'; rollout: Rollout; container: ManagedContainer }
  /** Blue/green: the new replicas, all healthy, recorded as the only ones serving, and the route switched to them at once. */
  | { kind: 'switch'; rollout: Rollout; containers: ManagedContainer[] }
  /** Healthy new replicas of the serving revision: recorded, then in the route (`replicas`: the whole rotation after). */
  | { kind: 'join'; rollout: Rollout; containers: ManagedContainer[]; replicas: Replica[] }
  /** Scaling down: one replica out of the route (`replicas`: those left) and no longer trusted; drained next. */
  | { kind: 'leave'; service: DesiredService; container: ManagedContainer; replicas: Replica[] }
  /** Points the gateway at replicas already serving (settings outside the revision changed), or drops the route. */
  | { kind: 'route'; service: string; to: { service: DesiredService; replicas: Replica[] } | null }
  /** Memory and CPU limits changed: applied to the running container, which keeps its id. */
  | { kind: 'resize'; container: ManagedContainer; limits: ContainerLimits }
  /** A replica out of the route (replaced by a switch, or scaled down): stopped gracefully (it finishes requests in flight), removed. */
  | { kind: 'drain'; container: ManagedContainer }
  /** A container nothing wants or trusts. */
  | { kind: 'remove'; container: ManagedContainer }
  /** An image out of every service's history. */
  | { kind: 'prune'; image: string };

export type StepKind = Step['kind'];

/** Where a launched container has got to. */
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

/** What the loop knows that the engine does not say: this pass's progress, the failures' backoff, the replica counts. */
export interface PlanContext {
  launched: ReadonlyMap<string, LaunchStage>;
  /** Replicas taken out of the route in this pass (replaced by a switch, or scaled down): drained, not just removed. */
  retired: ReadonlySet<string>;
  /** Images pulled in this pass (an engine may describe an index by another platform than the one pulled). */
  pulled: ReadonlySet<string>;
  /** Rollouts (`rolloutKey`) that may not launch now: rejected, waiting out a backoff, or failed in this pass. */
  blocked: ReadonlySet<string>;
  /** Housekeeping steps (`cleanupKey`) tried in this pass: one that failed waits for the next pass. */
  attempted: ReadonlySet<string>;
  /** Images the newest desired state (or a lane at work) wants: never pruned. */
  keepImages: ReadonlySet<string>;
  /** Replicas each service should run (already within its min..max); absent: its minimum. */
  replicas: ReadonlyMap<string, number>;
  /** Replicas the gateway lost: no longer trusted, even before the record says so. */
  ejected: ReadonlySet<string>;
}

/** With the image: after a new hub epoch a revision number may come back with another image. */
export function rolloutKey(service: DesiredService): string {
  return `${service.name}@${service.revision}@${service.image}`;
}

/** Steps whose failure is only logged: each is tried once per pass (a failed one waits for the next pass). */
export type Housekeeping = Extract<Step, { kind: 'drain' | 'remove' | 'prune' | 'resize' | 'leave' }>;

export function isHousekeeping(step: Step): step is Housekeeping {
  return step.kind === 'drain' || step.kind === 'remove' || step.kind === 'prune' || step.kind === 'resize' || step.kind === 'leave';
}

export function cleanupKey(step: Housekeeping): string {
  return step.kind === 'prune' ? `image:${step.image}` : step.kind === 'drain' || step.kind === 'remove' ? `container:${step.container.id}` : `${step.kind}:${step.container.id}`;
}

/** The launch a step belongs to; null for the housekeeping steps, whose failures are only logged. */
export function rolloutOf(step: Step): Rollout | null {
  switch (step.kind) {
    case 'pull':
    case 'create':
    case 'start':
    case 'waitHealthy':
    case 'switch':
    case 'join':
      return step.rollout;
    default:
      return null;
  }
}

/** The lane a step runs in: its service's, or null for images (pruning). */
export function laneOf(step: Step): string | null {
  const rollout = rolloutOf(step);
  if (rollout) return rollout.service.name;
  switch (step.kind) {
    case 'leave':
      return step.service.name;
    case 'route':
      return step.service;
    case 'resize':
    case 'drain':
    case 'remove':
      return step.container.service;
    default:
      return null;
  }
}

const matches = (c: ManagedContainer, service: DesiredService) => c.revision === service.revision && c.image === service.image;
const trusted = (c: ManagedContainer, current: Pick<Current, 'promoted'>, ejected: ReadonlySet<string>) => c.running && current.promoted.has(c.id) && !ejected.has(c.id);

/** Whether the service's desired revision serves (at least one trusted replica runs it). */
export function isServed(service: DesiredService, current: Pick<Current, 'containers' | 'promoted'>, ejected: ReadonlySet<string> = new Set()): boolean {
  return current.containers.some((c) => c.service === service.name && matches(c, service) && trusted(c, current, ejected));
}

/** The trusted replicas of the service running now, of any revision. */
export function runningReplicas(service: DesiredService, current: Pick<Current, 'containers' | 'promoted'>, ejected: ReadonlySet<string> = new Set()): number {
  return current.containers.filter((c) => c.service === service.name && trusted(c, current, ejected)).length;
}

export function plan(current: Current, target: readonly DesiredService[], ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  const wanted = new Set(target.map((s) => s.name));
  for (const c of current.containers) if (!wanted.has(c.service)) steps.push(dispose(c, ctx));
  for (const r of current.routes) if (!wanted.has(r.service)) steps.push({ kind: 'route', service: r.service, to: null });
  for (const service of target) steps.push(...planService(service, current, ctx));

  const inUse = new Set(current.containers.map((c) => c.image));
  const targetImages = new Set(target.map((s) => s.image));
  for (const image of current.unusedImages) {
    if (!inUse.has(image) && !targetImages.has(image) && !ctx.keepImages.has(image)) steps.push({ kind: 'prune', image });
  }
  return steps.filter((s) => !isHousekeeping(s) || !ctx.attempted.has(cleanupKey(s)));
}

/** One service's next wave (housekeeping already tried in this pass is filtered by `plan`). */
export function planService(service: DesiredService, current: Current, ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  const mine = current.containers.filter((c) => c.service === service.name);
  const route = current.routes.find((r) => r.service === service.name);
  const serving = inRouteOrder(mine.filter((c) => trusted(c, current, ctx.ejected)), route);
  const served = serving.filter((c) => matches(c, service));
  // Another revision serves until the switch: the group of the newest trusted replica.
  const newest = [...serving].sort((a, b) => b.created - a.created)[0];
  const old = served.length || !newest ? [] : serving.filter((c) => c.revision === newest.revision && c.image === newest.image);
  const launched = mine.filter((c) => ctx.launched.has(c.id) && matches(c, service) && !ctx.ejected.has(c.id));
  const keep = new Set([...served, ...old, ...launched].map((c) => c.id));
  for (const c of mine) if (!keep.has(c.id)) steps.push(dispose(c, ctx));

  const n = ctx.replicas.get(service.name) ?? scaleOf(service).minReplicas;
  const stage = (c: ManagedContainer) => ctx.launched.get(c.id);
  const healthy = launched.filter((c) => stage(c) === 'healthy');
  const rollout: Rollout = { service, previous: served.length ? served : old };
  const blocked = ctx.blocked.has(rolloutKey(service));
  const walk = () => {
    for (const c of launched) {
      if (stage(c) === 'created') steps.push({ kind: 'start', rollout, container: c });
      if (stage(c) === 'started') steps.push({ kind: 'waitHealthy', rollout, container: c });
    }
  };
  const launch = (count: number) => {
    for (let i = 0; i < count; i++) steps.push({ kind: 'create', rollout });
  };

  if (served.length) {
    walk();
    if (!blocked) launch(n - served.length - launched.length);
    const draining = mine.some((c) => ctx.retired.has(c.id));
    if (healthy.length) {
      steps.push({ kind: 'join', rollout, containers: healthy, replicas: replicasOf([...served, ...healthy]) });
    } else if (served.length > n && launched.length === 0 && !draining) {
      const leaving = served.at(-1)!;
      steps.push({ kind: 'leave', service, container: leaving, replicas: replicasOf(served.slice(0, -1)) });
    } else {
      steps.push(...routeTo(service, served, route));
    }
    for (const c of served) {
      const limits = resizeOf(c, service);
      if (limits) steps.push({ kind: 'resize', container: c, limits });
    }
    return steps;
  }

  if (old.length) {
    // The old replicas serve on with their own models, as far as the agent knows them: after a
    // restart it does not, and captures are filed without a model rather than under the new one.
    const models = route?.replicas.some((r) => r.container === old[0]!.id) ? route.models : [];
    steps.push(...routeTo({ ...service, revision: old[0]!.revision, image: old[0]!.image, models }, old, route));
  }
  if (blocked) return steps;
  if (launched.length === 0 && !current.localImages.has(service.image) && !ctx.pulled.has(service.image)) {
    // An image already here needs no registry: a device offline can still recreate its containers.
    steps.push({ kind: 'pull', rollout });
    return steps;
  }
  const m = clampReplicas(service, Math.max(old.length, n));
  walk();
  launch(m - launched.length);
  if (launched.length >= m && healthy.length === launched.length) steps.push({ kind: 'switch', rollout, containers: launched });
  return steps;
}

function dispose(container: ManagedContainer, ctx: PlanContext): Step {
  return { kind: ctx.retired.has(container.id) ? 'drain' : 'remove', container };
}

function replicasOf(containers: readonly ManagedContainer[]): Replica[] {
  return containers.map((c) => ({ container: c.id, port: c.port }));
}

/** The route to these replicas, when the gateway's differs. */
function routeTo(service: DesiredService, containers: readonly ManagedContainer[], now: Route | undefined): Step[] {
  const replicas = replicasOf(containers);
  return isDeepStrictEqual(now, routeOf(service, replicas)) ? [] : [{ kind: 'route', service: service.name, to: { service, replicas } }];
}

/** Replicas in the order they joined the route; those not in it after, oldest first. */
function inRouteOrder(containers: readonly ManagedContainer[], route: Route | undefined): ManagedContainer[] {
  const at = (c: ManagedContainer) => {
    const i = route?.replicas.findIndex((r) => r.container === c.id) ?? -1;
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  return [...containers].sort((a, b) => at(a) - at(b) || a.created - b.created);
}

/**
 * The limits to apply to a running replica, or null when it has them. Only set limits count: Docker
 * cannot lift one from a running container (container-runtime.ts), so a limit removed from the
 * deployment stays on the running replicas until they are replaced.
 */
function resizeOf(c: ManagedContainer, service: DesiredService): ContainerLimits | null {
  if (!c.limits) return null;
  const { memoryBytes, cpus } = service.limits;
  const memory = memoryBytes !== null && memoryBytes !== c.limits.memoryBytes;
  const cpu = cpus !== null && Math.round(cpus * 1e9) !== Math.round((c.limits.cpus ?? 0) * 1e9);
  return memory || cpu ? { memoryBytes, cpus } : null;
}
