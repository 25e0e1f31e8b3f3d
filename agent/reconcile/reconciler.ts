/**
 * The reconcile loop. A pass takes the desired state, then in waves reads the device (engine,
 * serving record, routes), plans the next steps (plan.ts) and runs them (execute.ts), until a plan
 * is empty; it then reports `converged`, or `failed` if a service does not run its desired revision.
 * A new revision goes pre-flight (platform, disk) → pull → create → start → /health → promote
 * (recorded on disk) and switch the route → drain the old container → prune images; until the
 * switch the old container keeps serving, and any failure leaves it serving. Failed rollouts are
 * retried with backoff; one rejected for its platform waits for a new desired state, one rejected
 * for disk space is checked again with backoff. A rollout that a new desired state no longer wants
 * is abandoned at once. Every step is reported with the generation it works on.
 */
import { backoffDelay, defaultBackoff, type BackoffPolicy } from '../../shared/backoff.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import type { DesiredService, DesiredState, ReportedState } from '../../shared/protocol.js';
import { execute, type ExecuteOptions, type PassProgress } from './execute.js';
import { failure } from './failure.js';
import { isServed, plan, rolloutKey, cleanupKey, type Current, type Rollout, type Step, type StepKind } from './plan.js';
import type { PromotedContainers } from './promoted-containers.js';
import { Reports } from './reports.js';

export interface ReconcilerOptions extends ExecuteOptions {
  promoted: Pick<PromotedContainers, 'ids' | 'promote' | 'retain' | 'unused' | 'pruned' | 'adoptOnce' | 'pulling'>;
  desired: () => DesiredState | null;
  /** Sends a report; expected to give up at once (not queue) while the hub is unreachable. */
  report: (state: ReportedState) => Promise<void>;
  /** A pass also runs this often, to notice drift (a container removed by hand). */
  resyncMs: number;
  backoff?: BackoffPolicy;
}

/** A rollout's step that failed: the code the hub is told, which step, and the original error. */
export interface StepFailure {
  code: ErrorCode;
  step: StepKind;
  message: string;
  cause: unknown;
}

/** After a pass that failed as a whole (Docker unreachable), the next one comes this much later. */
const PASS_RETRY_MS = 5000;
const FAILURE_OUTPUT_LINES = 20;

/** This pass's state beside what the engine shows (see PlanContext). */
interface Pass extends PassProgress {
  attempted: Set<string>;
  failed: Set<string>;
}

export class Reconciler {
  readonly #reports: Reports;
  /** `rolloutKey` → attempts so far and when the next may start. */
  readonly #failures = new Map<string, { attempts: number; retryAt: number; rejected: boolean }>();
  #running: Promise<void> | null = null;
  #again = false;
  #timer: unknown = null;
  #closed = false;
  #passedGeneration = -1;
  /** The rollout in progress, so a desired state that drops it can abandon it. */
  #inProgress: { service: string; revision: number; key: string; abort: AbortController } | null = null;

  constructor(private readonly o: ReconcilerOptions) {
    this.#reports = new Reports({ send: o.report, clock: o.clock, logger: o.logger });
  }

  /** Runs a pass now, or right after the one in progress. */
  trigger(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      this.abandonUnwanted();
      return;
    }
    this.#running = this.pass()
      .catch((err: unknown) => {
        // Docker restarting, a removal that failed: the loop must not stop here.
        this.o.logger.error({ err }, 'reconcile pass failed; retrying');
        this.schedule(PASS_RETRY_MS);
      })
      .finally(() => {
        this.#running = null;
        this.#inProgress = null;
        if (this.#again) {
          this.#again = false;
          this.trigger();
        }
      });
  }

  /** Waits for the pass in progress; no new pass starts. Containers keep running. */
  async close(): Promise<void> {
    this.#closed = true;
    this.o.clock.clearTimeout(this.#timer);
    this.#inProgress?.abort.abort(new Error('the agent is stopping'));
    await this.#running;
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
    const current = this.#inProgress;
    if (!current) return;
    const wanted = this.o.desired()?.services.find((s) => s.name === current.service);
    if (wanted?.revision === current.revision) return;
    this.o.logger.info({ service: current.service, revision: current.revision }, 'abandoning a rollout the new desired state no longer wants');
    current.abort.abort(new Error(`revision ${current.revision} of ${current.service} is no longer desired`));
  }

  private schedule(ms: number): void {
    this.o.clock.clearTimeout(this.#timer);
    this.#timer = this.o.clock.setTimeout(() => this.trigger(), ms);
  }

  private async pass(): Promise<void> {
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
    const pass: Pass = { launched: new Map(), retired: new Set(), pulled: new Set(), attempted: new Set(), failed: new Set() };
    for (let wave = 0; ; wave++) {
      if (this.#closed) return;
      const current = await this.readCurrent(services);
      for (const s of services) if (isServed(s, current)) this.#reports.setStatus(s, 'running', { servingRevision: s.revision });
      if (wave === 0 && services.some((s) => !isServed(s, current))) this.#reports.report(generation, 'reconciling');
      const steps = plan(current, services, { ...pass, blocked: this.blocked(pass), keepImages: new Set(this.o.desired()?.services.map((s) => s.image)) });
      if (steps.length === 0) break;
      for (const step of steps) {
        if (this.#closed) return;
        // Abandoned for a newer desired state (or a stop): the rest was planned for the old state, so
        // the next pass starts from the new one, and nothing is counted against this revision.
        if (!(await this.run(step, pass, generation))) return;
      }
    }
    this.#reports.report(generation, this.#reports.allRunning(services) ? 'converged' : 'failed');
    this.schedule(this.nextRetryMs(services));
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

  /** Runs one step; false when its rollout was abandoned (the pass must end). */
  private async run(step: Step, pass: Pass, generation: number): Promise<boolean> {
    const rollout = rolloutOf(step);
    if (step.kind === 'drain' || step.kind === 'remove' || step.kind === 'prune') pass.attempted.add(cleanupKey(step));
    if (!rollout) {
      await execute(step, { o: this.o, reports: this.#reports, generation, signal: new AbortController().signal, pass });
      return true;
    }
    const key = rolloutKey(rollout.service);
    if (this.#inProgress?.key !== key) this.#inProgress = { service: rollout.service.name, revision: rollout.service.revision, key, abort: new AbortController() };
    const { signal } = this.#inProgress.abort;
    if (signal.aborted) return false;
    try {
      await execute(step, { o: this.o, reports: this.#reports, generation, signal, pass });
      if (signal.aborted) return false;
      if (step.kind === 'route') {
        this.#failures.delete(key);
        this.#inProgress = null;
      }
      return true;
    } catch (err) {
      if (signal.aborted) return false;
      this.#inProgress = null;
      await this.failed(rollout, await this.stepFailure(step, err, pass), pass);
      return true;
    }
  }

  /** The failure as reported: a container that did not get healthy adds its last output. */
  private async stepFailure(step: Step, err: unknown, pass: Pass): Promise<StepFailure> {
    const e = err instanceof EdgemlError ? err : failure(ErrorCodes.AGENT_START_FAILED, (err as Error).message, err);
    let message = e.message;
    const launched = step.kind === 'start' || step.kind === 'waitHealthy' ? step.container : step.kind === 'route' ? step.promote?.container : undefined;
    // Forgotten by this pass, so the next wave removes it (it is unpromoted).
    if (launched) pass.launched.delete(launched.id);
    if (step.kind === 'start' || step.kind === 'waitHealthy') {
      const output = (await this.o.runtime.tail(step.container.id, FAILURE_OUTPUT_LINES)).trim();
      if (output) message = failure(e.code, `${message}; its last output:\n${output}`).message;
    }
    return { code: e.code, step: step.kind, message, cause: e.cause ?? e };
  }

  private async failed({ service, previous }: Rollout, f: StepFailure, pass: Pass): Promise<void> {
    const key = rolloutKey(service);
    // No variant for this platform never changes; a full disk may be freed, so it is retried.
    const final = f.code === ErrorCodes.AGENT_PLATFORM_UNAVAILABLE;
    const rejected = final || f.code === ErrorCodes.AGENT_DISK_FULL;
    const attempts = (this.#failures.get(key)?.attempts ?? 0) + 1;
    const retryAt = this.o.clock.now() + backoffDelay(attempts - 1, this.o.backoff ?? defaultBackoff);
    this.#failures.set(key, { attempts, retryAt, rejected: final });
    pass.failed.add(key);
    this.#reports.setStatus(service, rejected ? 'rejected' : 'failed', { servingRevision: previous?.revision ?? null, error: { code: f.code, message: f.message } });
    this.o.logger.warn({ service: service.name, revision: service.revision, code: f.code, step: f.step, err: f.message, attempts, rejected }, rejected ? 'service rejected' : 'rollout failed; the previous container keeps serving');
  }

  private blocked(pass: Pass): Set<string> {
    const now = this.o.clock.now();
    const waiting = [...this.#failures].filter(([, f]) => f.rejected || f.retryAt > now).map(([key]) => key);
    return new Set([...pass.failed, ...waiting]);
  }

  /** The next pass: when the first failed rollout may be retried, else at the resync. */
  private nextRetryMs(services: readonly DesiredService[]): number {
    const retries = services.map((s) => this.#failures.get(rolloutKey(s))).filter((f) => f && !f.rejected).map((f) => f!.retryAt);
    return retries.length ? Math.max(0, Math.min(...retries) - this.o.clock.now()) : this.o.resyncMs;
  }
}

/** The rollout a step belongs to; null for the housekeeping steps, whose failures are only logged. */
function rolloutOf(step: Step): Rollout | null {
  switch (step.kind) {
    case 'pull':
    case 'create':
    case 'start':
    case 'waitHealthy':
      return step.rollout;
    case 'route':
      return step.promote?.rollout ?? null;
    default:
      return null;
  }
}
