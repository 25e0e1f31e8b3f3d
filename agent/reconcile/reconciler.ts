/**
 * The reconcile loop. It reads the device (engine, serving record, routes), plans the next wave
 * (plan.ts) and runs each service's steps in a lane of its own (execute.ts): a lane runs its wave's
 * steps together (replicas launch in parallel), and when it finishes the loop reads and plans again,
 * while the other lanes go on. So a slow pull or health wait of one service never delays another's.
 * When no lane is busy and the plan is empty the loop reports `converged`, or `failed` if a service
 * does not run its desired revision.
 *
 * A new revision goes pre-flight (platform, disk) → pull → create → start → /health for each new
 * replica → promote (recorded on disk) and switch the route to all of them at once → drain the old
 * replicas → prune images; until the switch the old replicas serve, and any failure (one replica is
 * enough) leaves them serving and removes the new ones. Failed launches are retried with backoff;
 * one rejected for its platform waits for a new desired state, one rejected for disk space is
 * checked again with backoff. A lane whose rollout a new desired state no longer wants is abandoned
 * at once. Every step is reported with the generation it works on.
 */
import { defaultBackoff, type BackoffPolicy } from '../../shared/backoff.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import type { DesiredService, DesiredState, ReportedState } from '../../shared/protocol.js';
import { execute, type ExecuteOptions, type PassProgress } from './execute.js';
import { failure } from './failure.js';
import { cleanupKey, isHousekeeping, isServed, laneOf, plan, rolloutKey, rolloutOf, runningReplicas, type Current, type Rollout, type Step, type StepKind } from './plan.js';
import type { PromotedContainers } from './promoted-containers.js';
import { clampReplicas, fixedReplicas, type ReplicaTarget } from './replica-target.js';
import { Reports } from './reports.js';
import { RolloutFailures } from './rollout-failures.js';
import type { Route } from './routes.js';

export interface ReconcilerOptions extends ExecuteOptions {
  promoted: Pick<PromotedContainers, 'ids' | 'promote' | 'admit' | 'forget' | 'retain' | 'unused' | 'pruned' | 'adoptOnce' | 'pulling'>;
  desired: () => DesiredState | null;
  /** Sends a report; expected to give up at once (not queue) while the hub is unreachable. */
  report: (state: ReportedState) => Promise<void>;
  /** A pass also runs this often, to notice drift (a container removed by hand). */
  resyncMs: number;
  backoff?: BackoffPolicy;
  /** How many replicas each service runs, asked on every wave (the autoscaler); default: each its minimum. */
  replicas?: ReplicaTarget;
}

/** A step that failed: the code the hub is told, which step, and the original error. */
export interface StepFailure {
  code: ErrorCode;
  step: StepKind;
  message: string;
  cause: unknown;
}

/** After a pass that failed as a whole (Docker unreachable), the next one comes this much later. */
const PASS_RETRY_MS = 5000;
const FAILURE_OUTPUT_LINES = 20;

/** One service's steps at work (or the images', for pruning: lane null). */
interface Lane {
  /** The rollout its launches belong to (`rolloutKey`): abandoned when no longer desired. */
  key: string | null;
  /** Images its steps use (or remove): a prune and a launch of one image never run at once. */
  images: ReadonlySet<string>;
  abort: AbortController;
  abandoned: boolean;
  done: Promise<void>;
}

export class Reconciler {
  readonly #reports: Reports;
  readonly #replicas: ReplicaTarget;
  readonly #failures: RolloutFailures;
  readonly #lanes = new Map<string | null, Lane>();
  /** Per service: what its lanes did in this pass that the engine does not show. */
  readonly #progress = new Map<string, PassProgress>();
  /** Housekeeping tried in this pass (`cleanupKey`). */
  readonly #attempted = new Set<string>();
  /** Replicas the gateway lost, until they are gone from the engine. */
  readonly #ejected = new Set<string>();
  readonly #retryTimers = new Set<unknown>();
  #loop: Promise<void> | null = null;
  /** A trigger came since the loop last read the desired state. */
  #pending = false;
  #wake: () => void = () => undefined;
  #timer: unknown = null;
  #closed = false;
  #passedGeneration = -1;

  constructor(private readonly o: ReconcilerOptions) {
    this.#reports = new Reports({ send: o.report, clock: o.clock, logger: o.logger });
    this.#replicas = o.replicas ?? fixedReplicas;
    this.#failures = new RolloutFailures({ clock: o.clock, backoff: o.backoff ?? defaultBackoff });
  }

  /** Plans again now: starts the loop, or wakes the one running (abandoning lanes no longer wanted). */
  trigger(): void {
    if (this.#closed) return;
    this.#pending = true;
    this.abandonUnwanted();
    if (this.#loop) {
      this.#wake();
      return;
    }
    this.#loop = this.loop()
      .catch((err: unknown) => {
        // Docker restarting, a record that cannot be written: the loop must not stop here.
        this.o.logger.error({ err }, 'reconcile pass failed; retrying');
        this.schedule(PASS_RETRY_MS);
      })
      .finally(() => {
        this.#loop = null;
        if (this.#pending) this.trigger();
      });
  }

  /** The gateway lost this replica (connection or health failure): out of the route now, no longer trusted, replaced. */
  replicaFailed(container: string): void {
    if (this.#closed || this.#ejected.has(container)) return;
    this.#ejected.add(container);
    for (const route of this.o.routes.list()) {
      if (!route.replicas.some((r) => r.container === container)) continue;
      const rest = route.replicas.filter((r) => r.container !== container);
      // A route is never empty: the last replica stays named (the gateway holds it out of rotation) until a new one switches in.
      if (rest.length) this.o.routes.set(serviceOf(route), rest);
      this.o.logger.warn({ service: route.service, container, left: rest.length }, 'the gateway lost a replica: out of the route, to be replaced');
    }
    this.o.promoted.forget([container]).catch((err: unknown) => this.o.logger.warn({ container, err: (err as Error).message }, 'cannot record that a replica is no longer trusted'));
    this.trigger();
  }

  /** Waits for the steps in progress (launches are abandoned); no new pass starts. Containers keep running. */
  async close(): Promise<void> {
    this.#closed = true;
    this.o.clock.clearTimeout(this.#timer);
    for (const t of this.#retryTimers) this.o.clock.clearTimeout(t);
    for (const lane of this.#lanes.values()) this.abandon(lane, new Error('the agent is stopping'));
    this.#wake();
    await this.#loop;
    await Promise.all([...this.#lanes.values()].map((l) => l.done));
    this.#reports.close();
  }

  /** Something the hub should know that is not about one service (a desired state that was dropped). */
  reportError(code: string, message: string): void {
    this.#reports.reportError(this.o.desired()?.generation ?? 0, code, message);
  }

  /** The newest state again (after a reconnect: reports made while offline were not sent). */
  reportLatest(): void {
    this.#reports.reportLatest();
  }

  /** A slow pull or health wait must not hold up a newer desired state that no longer wants it. */
  private abandonUnwanted(): void {
    const wanted = new Set(this.o.desired()?.services.map(rolloutKey));
    for (const lane of this.#lanes.values()) {
      if (lane.key === null || lane.abandoned || wanted.has(lane.key)) continue;
      this.o.logger.info({ rollout: lane.key }, 'abandoning a rollout the new desired state no longer wants');
      this.abandon(lane, new Error(`${lane.key} is no longer desired`));
    }
  }

  private abandon(lane: Lane, reason: Error): void {
    lane.abandoned = true;
    lane.abort.abort(reason);
  }

  private schedule(ms: number): void {
    this.o.clock.clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#timer = this.o.clock.setTimeout(() => this.trigger(), ms);
  }

  private async loop(): Promise<void> {
    while (!this.#closed) {
      const woken = new Promise<void>((resolve) => (this.#wake = resolve));
      this.#pending = false;
      const desired = this.o.desired();
      // No target yet (a new device, or a cache that could not be read): what runs stays until the hub says.
      if (!desired) {
        this.#reports.report(0, 'idle');
        this.schedule(this.o.resyncMs);
        return;
      }
      if (desired.generation !== this.#passedGeneration) {
        this.#passedGeneration = desired.generation;
        this.#reports.clearError();
      }
      const { services, generation } = desired;
      this.#reports.retain(services);
      // A lane that finishes while the engine is read made changes the read may miss (a container
      // created after the list): it is planned again from the next read, not this one.
      const busyAtRead = new Set(this.#lanes.keys());
      const current = await this.readCurrent(services);
      if (this.#closed) return;
      for (const id of this.#ejected) if (!current.containers.some((c) => c.id === id)) this.#ejected.delete(id);
      const replicas = new Map(services.map((s) => [s.name, clampReplicas(s, this.#replicas.desired(s, runningReplicas(s, current, this.#ejected)))]));
      for (const s of services) {
        const status = this.#reports.status(s.name);
        if (isServed(s, current, this.#ejected) && (status?.phase !== 'running' || status.revision !== s.revision)) this.#reports.setStatus(s, 'running', { servingRevision: s.revision });
      }
      if (services.some((s) => !isServed(s, current, this.#ejected)) && this.#reports.phase !== 'reconciling') this.#reports.report(generation, 'reconciling');
      this.reportReplicas(services, replicas, generation);

      const busyImages = [...this.#lanes.values()].flatMap((l) => [...l.images]);
      const steps = plan(current, services, {
        ...this.progress(),
        blocked: this.#failures.blocked(),
        attempted: this.#attempted,
        keepImages: new Set([...(this.o.desired()?.services.map((s) => s.image) ?? []), ...busyImages]),
        replicas,
        ejected: this.#ejected,
      });
      let deferred = false;
      for (const [lane, laneSteps] of byLane(steps)) {
        if (this.#lanes.has(lane)) continue;
        if (busyAtRead.has(lane)) {
          deferred = true;
          continue;
        }
        const images = new Set(laneSteps.flatMap(imagesOf));
        if ([...this.#lanes.values()].some((l) => [...images].some((i) => l.images.has(i)))) continue;
        this.startLane(lane, laneSteps, images, generation);
      }
      // A lane deferred above finished already: read again at once.
      if (this.#lanes.size === 0 && deferred) continue;
      if (this.#lanes.size === 0) {
        // Nothing at work and nothing to do: the pass is over.
        this.#reports.report(generation, this.#reports.allRunning(services) ? 'converged' : 'failed');
        this.#attempted.clear();
        this.#progress.clear();
        this.schedule(this.#failures.nextRetryMs(services.map(rolloutKey)) ?? this.o.resyncMs);
        return;
      }
      await woken;
    }
  }

  private progress(): Pick<PassProgress, 'launched' | 'retired' | 'pulled'> {
    const all = [...this.#progress.values()];
    return {
      launched: new Map(all.flatMap((p) => [...p.launched])),
      retired: new Set(all.flatMap((p) => [...p.retired])),
      pulled: new Set(all.flatMap((p) => [...p.pulled])),
    };
  }

  private progressOf(service: string): PassProgress {
    let p = this.#progress.get(service);
    if (!p) this.#progress.set(service, (p = { launched: new Map(), retired: new Set(), pulled: new Set() }));
    return p;
  }

  /** Each service's replica counts, reported when they change. */
  private reportReplicas(services: readonly DesiredService[], replicas: ReadonlyMap<string, number>, generation: number): void {
    let changed = false;
    for (const s of services) {
      const { capacity, lastScale } = this.#replicas.status(s.name);
      const ready = this.o.routes.get(s.name)?.replicas.filter((r) => !this.#ejected.has(r.container)).length ?? 0;
      const counts = { desired: replicas.get(s.name)!, ready, ...(capacity ? { capacity } : {}) };
      if (this.#reports.setReplicas(s.name, { replicas: counts, ...(lastScale ? { lastScale } : {}) })) changed = true;
    }
    if (changed) this.#reports.reportSoon(generation);
  }

  private startLane(name: string | null, steps: Step[], images: ReadonlySet<string>, generation: number): void {
    const rollout = steps.map(rolloutOf).find((r) => r !== null) ?? null;
    const lane: Lane = { key: rollout ? rolloutKey(rollout.service) : null, images, abort: new AbortController(), abandoned: false, done: Promise.resolve() };
    this.#lanes.set(name, lane);
    lane.done = this.runLane(lane, name, steps, generation)
      .catch((err: unknown) => this.o.logger.error({ err, lane: name }, 'a reconcile lane failed'))
      .finally(() => {
        this.#lanes.delete(name);
        this.#wake();
      });
  }

  /**
   * Runs one wave of a lane's steps together. The first launch step that fails fails the launch:
   * its siblings are aborted, and every replica it launched is forgotten by the pass (the next wave
   * removes them, unpromoted), while the replicas already serving serve on.
   */
  private async runLane(lane: Lane, name: string | null, steps: Step[], generation: number): Promise<void> {
    const pass = name === null ? { launched: new Map(), retired: new Set<string>(), pulled: new Set<string>() } : this.progressOf(name);
    for (const step of steps) {
      const key = housekeepingKey(step);
      if (key) this.#attempted.add(key);
    }
    const x = { o: this.o, reports: this.#reports, generation, signal: lane.abort.signal, pass, ejected: this.#ejected };
    let failed: { rollout: Rollout; failure: Promise<StepFailure> } | null = null;
    await Promise.all(
      steps.map(async (step) => {
        try {
          await execute(step, x);
        } catch (err) {
          const rollout = rolloutOf(step);
          if (lane.abandoned || failed) return;
          if (!rollout) {
            this.o.logger.warn({ step: step.kind, err: (err as Error).message }, 'a housekeeping step failed; retried by the next pass');
            return;
          }
          lane.abort.abort(new Error('a sibling replica failed'));
          failed = { rollout, failure: this.stepFailure(step, err) };
        }
      }),
    );
    if (lane.abandoned || failed) pass.launched.clear();
    if (lane.abandoned) return;
    if (failed) {
      const f = failed as { rollout: Rollout; failure: Promise<StepFailure> };
      this.failed(f.rollout, await f.failure, generation);
    } else if (lane.key && steps.some((s) => s.kind === 'switch' || s.kind === 'join')) {
      this.#failures.succeeded(lane.key);
    }
  }

  private async readCurrent(services: readonly DesiredService[]): Promise<Current> {
    const containers = await this.o.runtime.list(this.o.deviceId);
    const adopted = containers.filter((c) => c.running && services.some((s) => s.name === c.service && s.revision === c.revision && s.image === c.image));
    if ((await this.o.promoted.adoptOnce(adopted.map((c) => ({ service: c.service, container: c.id, image: c.image })))) && adopted.length) {
      this.o.logger.info({ containers: adopted.map((c) => c.name) }, 'no record of promoted containers (an upgraded agent): adopted the running ones that match');
    }
    await this.o.promoted.retain(services.map((s) => s.name));
    const promoted = this.o.promoted.ids();
    const localImages = new Set<string>();
    for (const s of services) {
      if (!isServed(s, { containers, promoted }) && (await this.o.runtime.hasImage(s.image, this.o.platform))) localImages.add(s.image);
    }
    return { containers, promoted, localImages, unusedImages: this.o.promoted.unused(), routes: this.o.routes.list() };
  }

  /** The failure as reported: a container that did not get healthy adds its last output. */
  private async stepFailure(step: Step, err: unknown): Promise<StepFailure> {
    const e = err instanceof EdgemlError ? err : failure(ErrorCodes.AGENT_START_FAILED, (err as Error).message, err);
    let message = e.message;
    if (step.kind === 'start' || step.kind === 'waitHealthy') {
      const output = (await this.o.runtime.tail(step.container.id, FAILURE_OUTPUT_LINES)).trim();
      if (output) message = failure(e.code, `${message}; its last output:\n${output}`).message;
    }
    return { code: e.code, step: step.kind, message, cause: e.cause ?? e };
  }

  private failed({ service, previous }: Rollout, f: StepFailure, generation: number): void {
    const key = rolloutKey(service);
    // No variant for this platform never changes; a full disk may be freed, so it is retried.
    const final = f.code === ErrorCodes.AGENT_PLATFORM_UNAVAILABLE;
    const rejected = final || f.code === ErrorCodes.AGENT_DISK_FULL;
    const { attempts, retryInMs } = this.#failures.failed(key, final);
    // Other lanes may keep the loop busy past the retry time: it must plan again then.
    if (retryInMs !== null) {
      const timer = this.o.clock.setTimeout(() => {
        this.#retryTimers.delete(timer);
        this.trigger();
      }, retryInMs);
      this.#retryTimers.add(timer);
    }
    const error = { code: f.code, message: f.message };
    const scaling = previous.some((p) => p.revision === service.revision && p.image === service.image);
    // A replica that could not be added leaves the service serving on the others.
    if (scaling) this.#reports.setStatus(service, 'running', { servingRevision: service.revision, error });
    else this.#reports.setStatus(service, rejected ? 'rejected' : 'failed', { servingRevision: previous[0]?.revision ?? null, error });
    this.#reports.report(generation, 'reconciling');
    this.o.logger.warn({ service: service.name, revision: service.revision, code: f.code, step: f.step, err: f.message, attempts, rejected }, scaling ? 'a new replica failed; the others keep serving' : rejected ? 'service rejected' : 'rollout failed; the previous replicas keep serving');
  }
}

function byLane(steps: readonly Step[]): Map<string | null, Step[]> {
  const lanes = new Map<string | null, Step[]>();
  for (const step of steps) {
    const lane = laneOf(step);
    lanes.set(lane, [...(lanes.get(lane) ?? []), step]);
  }
  return lanes;
}


function housekeepingKey(step: Step): string | null {
  return isHousekeeping(step) ? cleanupKey(step) : null;
}

function imagesOf(step: Step): string[] {
  const rollout = rolloutOf(step);
  return rollout ? [rollout.service.image] : step.kind === 'prune' ? [step.image] : [];
}

/** The desired service a route was set from (routes.ts `routeOf`), to set it again with fewer replicas. */
function serviceOf(route: Route): DesiredService {
  const { service: name, revision, image, keyHash, previousKeys, limits, models, capture } = route;
  return { name, revision, image, keyHash, previousKeys, limits, models, capture };
}
