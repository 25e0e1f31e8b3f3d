/**
 * The simulated container runtime of one device: which revision of each service serves, which
 * images are on disk, and how long (and whether) a pull and a start-until-healthy take. Nothing runs;
 * the durations are waits on the fleet's scheduler and the outcomes are reproducible draws. Errors
 * carry the agent's codes and message shapes, so the hub cannot tell them from real ones.
 */
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { DesiredService } from '../../shared/protocol.js';
import { SimulatorConfigError, type DurationSpec, type FailureRates, type RevisionContext, type Timing } from './options.js';
import type { Scheduler } from './scheduler.js';
import { drawKey, uniform } from './seeded-random.js';

interface Serving {
  revision: number;
  image: string;
}

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
}

/** Progress is reported by the agent at most once a second, so the simulated pull ticks at that rate. */
const PROGRESS_TICK_MS = 1000;
/** Each service keeps its current and previous image, as the agent's pruning does. */
const KEPT_IMAGES_PER_SERVICE = 2;

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
 */
export function drawnStepsMs(seed: number, timing: Timing, deviceId: string, service: string, revision: number, attempt = 1): { pullMs: number; startMs: number; healthMs: number } {
  const draw = (what: keyof Timing) => drawMs(timing[what], uniform(seed, drawKey(what, deviceId, service, revision, attempt)));
  return { pullMs: draw('pullMs'), startMs: draw('startMs'), healthMs: draw('healthMs') };
}

export class SimRuntime {
  readonly #serving = new Map<string, Serving>();
  readonly #images = new Set<string>();
  /** Per service, the images it promoted, newest last. */
  readonly #history = new Map<string, string[]>();

  constructor(private readonly o: SimRuntimeOptions) {}

  serving(service: string): Serving | null {
    return this.#serving.get(service) ?? null;
  }

  hasImage(image: string): boolean {
    return this.#images.has(image);
  }

  /** The "containers" of services no longer wanted go, as the agent removes them. */
  retain(services: ReadonlyArray<string>): void {
    for (const name of [...this.#serving.keys()]) if (!services.includes(name)) this.#serving.delete(name);
  }

  async pull(service: DesiredService, attempt: number, onProgress: (p: { current: number; total: number }) => void, signal: AbortSignal): Promise<void> {
    const ctx = this.context(service);
    const ms = drawMs(this.o.timing(ctx).pullMs, this.draw('pullMs', service, attempt));
    // A failing pull fails halfway through, after some progress, as a broken registry does.
    const fails = this.fails('pull', ctx, attempt);
    const until = fails ? Math.round(ms / 2) : ms;
    const total = this.o.pullBytes;
    for (let done = 0; done < until; ) {
      const step = Math.min(PROGRESS_TICK_MS, until - done);
      await this.o.scheduler.sleep(step, signal);
      done += step;
      onProgress({ current: Math.round((total * done) / Math.max(ms, 1)), total });
    }
    if (fails) {
      throw new EdgemlError(ErrorCodes.AGENT_PULL_FAILED, `pulling ${service.image} for ${this.o.platform} failed: simulated registry failure (fleet simulator)`);
    }
    this.#images.add(service.image);
  }

  /** Create, start and wait for `/health`; a failed health check leaves the old revision serving. */
  async startHealthy(service: DesiredService, attempt: number, signal: AbortSignal): Promise<void> {
    const ctx = this.context(service);
    const timing = this.o.timing(ctx);
    await this.o.scheduler.sleep(drawMs(timing.startMs, this.draw('startMs', service, attempt)), signal);
    await this.o.scheduler.sleep(drawMs(timing.healthMs, this.draw('healthMs', service, attempt)), signal);
    if (this.fails('health', ctx, attempt)) {
      throw new EdgemlError(ErrorCodes.AGENT_HEALTH_FAILED, '/health says failed: simulated health failure (fleet simulator)');
    }
  }

  /** The switch: the new revision serves; images out of every service's history, and not `wanted`, are pruned. */
  promote(service: DesiredService, wanted: ReadonlySet<string>): void {
    this.#serving.set(service.name, { revision: service.revision, image: service.image });
    const history = [...(this.#history.get(service.name) ?? []).filter((i) => i !== service.image), service.image];
    const dropped = history.splice(0, Math.max(0, history.length - KEPT_IMAGES_PER_SERVICE));
    this.#history.set(service.name, history);
    for (const image of dropped) if (!wanted.has(image) && ![...this.#history.values()].some((h) => h.includes(image))) this.#images.delete(image);
  }

  private context(service: DesiredService): RevisionContext {
    return { index: this.o.index, deviceId: this.o.deviceId, service: service.name, revision: service.revision, image: service.image };
  }

  private draw(what: string, service: DesiredService, attempt: number): number {
    return uniform(this.o.seed, drawKey(what, this.o.deviceId, service.name, service.revision, attempt));
  }

  private fails(kind: FailureKind, ctx: RevisionContext, attempt: number): boolean {
    const rate = this.o.failures(ctx)[kind] ?? 0;
    return failureDrawn(this.o.seed, kind, rate, ctx.deviceId, ctx.service, ctx.revision, this.o.stickyFailures ? null : attempt);
  }
}
