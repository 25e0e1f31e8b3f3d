/**
 * The simulated container engine of one device, under the real agent's reconcile loop: the unit
 * tests' fake runtime (test/helpers/fake-container-runtime.ts, held to the runtime contract suite)
 * with the simulator's timing and failures on top. A pull, a start and the wait for `/health` take
 * durations drawn from the seed and fail by the configured rates; every wait is an entry on the
 * fleet's scheduler, never a Node timer of its own. Everything else (containers, images on disk,
 * limits) is the fake's, so a method the runtime interface gains needs one implementation.
 *
 * Errors carry the agent's codes and message shapes, so the hub cannot tell them from real ones.
 */
import type { HealthAnswer, HealthProbe } from '../../agent/reconcile/health-probe.js';
import type { ManagedContainer, PullProgress } from '../../agent/runtime/container-runtime.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { DesiredState } from '../../shared/protocol.js';
import { FakeContainerRuntime } from '../../test/helpers/fake-container-runtime.js';
import { SimulatorConfigError, type DurationSpec, type FailureRates, type RevisionContext, type Timing } from './options.js';
import type { Scheduler } from './scheduler.js';
import { drawKey, uniform } from './seeded-random.js';

export interface SimRuntimeOptions {
  index: number;
  deviceId: string;
  platform: string;
  scheduler: Scheduler;
  seed: number;
  timing: (ctx: RevisionContext) => Timing;
  failures: (ctx: RevisionContext) => FailureRates;
  stickyFailures: boolean;
  pullBytes: number;
  /** The device's target: a pull names only an image, and its timing is drawn for the service that wants it. */
  desired: () => DesiredState | null;
  /** A failure the simulation injected (a pull or a health check), as it happens: the fleet's timeline. */
  onFailure: (ctx: RevisionContext) => void;
}

/** Progress is reported by the agent at most once a second, so the simulated pull ticks at that rate. */
const PROGRESS_TICK_MS = 1000;

export type FailureKind = keyof FailureRates;

/** Whether `deviceId` fails `kind` for this revision: the draw the simulator makes, for tests to predict. */
export function failureDrawn(seed: number, kind: FailureKind, rate: number, deviceId: string, service: string, revision: number, attempt: number | null = null): boolean {
  if (!(rate >= 0 && rate <= 1)) throw new SimulatorConfigError(`a ${kind} failure rate must be in [0, 1], not ${rate}`);
  return uniform(seed, drawKey('fail', kind, deviceId, service, revision, attempt ?? 'every')) < rate;
}

function drawMs(spec: DurationSpec, u: number): number {
  const { min, max } = typeof spec === 'number' ? { min: spec, max: spec } : spec;
  if (!(min >= 0 && max >= min)) throw new SimulatorConfigError(`a duration needs 0 <= min <= max, not ${JSON.stringify(spec)}`);
  return Math.round(min + u * (max - min));
}

/**
 * How long `deviceId` spends pulling, starting and health-checking an attempt at a revision (a new
 * image): the draws the simulator makes, so a benchmark can tell its floor from the hub's share.
 * Pulls and starts are counted apart: a retry after a failed health check is start attempt 2 with
 * no pull at all.
 */
export function drawnStepsMs(seed: number, timing: Timing, deviceId: string, service: string, revision: number, attempt = 1): { pullMs: number; startMs: number; healthMs: number } {
  const draw = (what: keyof Timing) => drawMs(timing[what], uniform(seed, drawKey(what, deviceId, service, revision, attempt)));
  return { pullMs: draw('pullMs'), startMs: draw('startMs'), healthMs: draw('healthMs') };
}

/** A started container's simulated `/health`: ready at `readyAt`, or failed then. */
interface Readiness {
  ctx: RevisionContext;
  readyAt: number;
  fails: boolean;
}

export class SimContainerRuntime extends FakeContainerRuntime {
  /** `kind\0service\0revision` → attempts so far. */
  readonly #attempts = new Map<string, number>();
  readonly #readiness = new Map<string, Readiness>();

  /** The probe the reconciler asks: it answers once the container's drawn health time has passed. */
  readonly health: HealthProbe = { probe: (port, signal) => this.probe(port, signal) };

  constructor(private readonly o: SimRuntimeOptions) {
    super(o.platform);
  }

  /** Every image has a variant for the device's platform: the simulated registry holds anything. */
  override async platforms(): Promise<string[]> {
    return [this.o.platform];
  }

  override async pull(image: string, _platform: string, onProgress: (p: PullProgress) => void, signal: AbortSignal): Promise<void> {
    const ctx = this.pullContext(image);
    const attempt = this.attempt('pull', ctx);
    const { ms, fails } = loud(() => ({ ms: drawMs(this.o.timing(ctx).pullMs, this.draw('pullMs', ctx, attempt)), fails: this.fails('pull', ctx, attempt) }));
    // A failing pull fails halfway through, after some progress, as a broken registry does.
    const until = fails ? Math.round(ms / 2) : ms;
    const total = this.o.pullBytes;
    for (let done = 0; done < until; ) {
      const step = Math.min(PROGRESS_TICK_MS, until - done);
      await this.o.scheduler.sleep(step, signal);
      done += step;
      onProgress({ current: Math.round((total * done) / Math.max(ms, 1)), total });
    }
    signal.throwIfAborted();
    if (fails) {
      this.o.onFailure(ctx);
      throw new EdgemlError(ErrorCodes.AGENT_PULL_FAILED, 'simulated registry failure (fleet simulator)');
    }
    this.local.add(image);
  }

  /** Creating and starting take the drawn start time; `/health` then answers after the drawn health time. */
  override async start(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (!c) return super.start(id);
    const ctx = this.context(c);
    const attempt = this.attempt('start', ctx);
    const { startMs, healthMs, fails } = loud(() => {
      const timing = this.o.timing(ctx);
      return { startMs: drawMs(timing.startMs, this.draw('startMs', ctx, attempt)), healthMs: drawMs(timing.healthMs, this.draw('healthMs', ctx, attempt)), fails: this.fails('health', ctx, attempt) };
    });
    await this.o.scheduler.sleep(startMs);
    await super.start(id);
    this.#readiness.set(id, { ctx, readyAt: this.o.scheduler.now() + healthMs, fails });
  }

  override async remove(id: string): Promise<void> {
    this.#readiness.delete(id);
    await super.remove(id);
  }

  private async probe(port: number, signal: AbortSignal): Promise<HealthAnswer> {
    const c = this.running().find((r) => r.port === port);
    const readiness = c && this.#readiness.get(c.id);
    if (!readiness) return { healthy: false, failed: null };
    await this.o.scheduler.sleep(readiness.readyAt - this.o.scheduler.now(), signal);
    if (!readiness.fails) return { healthy: true };
    this.o.onFailure(readiness.ctx);
    return { healthy: false, failed: 'simulated health failure (fleet simulator)' };
  }

  /** The desired service the image is pulled for (the first, should two share it). */
  private pullContext(image: string): RevisionContext {
    const service = this.o.desired()?.services.find((s) => s.image === image);
    // The reconciler pulls only what the target wants; a target changed meanwhile abandons the pull.
    if (!service) throw new EdgemlError(ErrorCodes.AGENT_PULL_FAILED, `no desired service wants ${image} (fleet simulator)`);
    return { index: this.o.index, deviceId: this.o.deviceId, service: service.name, revision: service.revision, image };
  }

  private context(c: ManagedContainer): RevisionContext {
    return { index: this.o.index, deviceId: this.o.deviceId, service: c.service, revision: c.revision, image: c.image };
  }

  private attempt(kind: 'pull' | 'start', ctx: RevisionContext): number {
    const key = drawKey(kind, ctx.service, ctx.revision);
    const attempt = (this.#attempts.get(key) ?? 0) + 1;
    this.#attempts.set(key, attempt);
    return attempt;
  }

  private draw(what: keyof Timing, ctx: RevisionContext, attempt: number): number {
    return uniform(this.o.seed, drawKey(what, ctx.deviceId, ctx.service, ctx.revision, attempt));
  }

  private fails(kind: FailureKind, ctx: RevisionContext, attempt: number): boolean {
    const rate = this.o.failures(ctx)[kind] ?? 0;
    return failureDrawn(this.o.seed, kind, rate, ctx.deviceId, ctx.service, ctx.revision, this.o.stickyFailures ? null : attempt);
  }
}

/**
 * A bad rate or duration is the caller's mistake, not a device failing: besides failing the step,
 * it is rethrown uncaught, so a test or benchmark stops on it instead of counting failed devices.
 */
function loud<T>(draw: () => T): T {
  try {
    return draw();
  } catch (err) {
    if (err instanceof SimulatorConfigError) {
      queueMicrotask(() => {
        throw err;
      });
    }
    throw err;
  }
}
