/**
 * The reconcile loop of one simulated device, over the simulated runtime. It follows
 * agent/reconcile/reconciler.ts step for step, because what the hub sees (the order, phases and
 * generations of `reported` messages, when they are sent, retries and abandoned rollouts) is the
 * point of the simulation: a pass reports `reconciling`, then per service in need of a rollout
 * `pulling` (with progress, at most once a second) and `starting`, and at its end `converged` or
 * `failed`. A failed revision leaves the previous one serving and is retried with backoff; a
 * rollout that a newer desired state no longer wants is abandoned at once.
 */
import { backoffDelay, type BackoffPolicy } from '../../shared/backoff.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { PROTOCOL_VERSION, type DesiredService, type DesiredState, type ReportedService, type ReportedState } from '../../shared/protocol.js';
import { SimulatorConfigError } from './options.js';
import type { Scheduled, Scheduler } from './scheduler.js';
import { drawKey, uniform } from './seeded-random.js';
import type { SimRuntime } from './sim-runtime.js';

export interface SimReconcilerOptions {
  deviceId: string;
  runtime: SimRuntime;
  desired: () => DesiredState | null;
  /** Sends a report; must not throw or wait (the device drops it while offline). */
  report: (state: ReportedState) => void;
  /** The first time a revision serves, and each time one fails: the fleet's timeline. */
  onRunning: (service: DesiredService) => void;
  onFailed: (service: DesiredService, attempts: number) => void;
  scheduler: Scheduler;
  clock: Clock;
  retry: BackoffPolicy | false;
  resyncMs: number;
  seed: number;
}

const PROGRESS_REPORT_MS = 1000;

export class SimReconciler {
  readonly #status = new Map<string, ReportedService>();
  /** `service@revision` → attempts so far and when the next may start (never, without retries). */
  readonly #failures = new Map<string, { attempts: number; retryAt: number }>();
  #running: Promise<void> | null = null;
  #again = false;
  #next: Scheduled | null = null;
  #closed = false;
  #lastProgressReport = 0;
  #lastPhase: ReportedState['phase'] = 'idle';
  #passedGeneration = -1;
  #latest: ReportedState | null = null;
  #lastError: { code: string; message: string } | null = null;
  #inProgress: { service: string; revision: number; abort: AbortController } | null = null;

  constructor(private readonly o: SimReconcilerOptions) {}

  /** The newest report made, sent or not. */
  latest(): ReportedState | null {
    return this.#latest;
  }

  /** Runs a pass now, or right after the one in progress (abandoning a rollout no longer wanted). */
  trigger(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      this.abandonUnwanted();
      return;
    }
    this.#running = this.pass().finally(() => {
      this.#running = null;
      if (this.#again) {
        this.#again = false;
        this.trigger();
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#next?.cancel();
    this.#inProgress?.abort.abort(new Error('the simulated device is stopping'));
    await this.#running;
  }

  /** A desired state that was dropped, as the agent tells the hub. */
  reportError(code: string, message: string): void {
    this.#lastError = { code, message };
    this.report(this.o.desired()?.generation ?? 0, this.#lastPhase);
  }

  private abandonUnwanted(): void {
    const current = this.#inProgress;
    if (!current) return;
    const wanted = this.o.desired()?.services.find((s) => s.name === current.service);
    if (wanted?.revision === current.revision) return;
    current.abort.abort(new Error(`revision ${current.revision} of ${current.service} is no longer desired`));
  }

  private async pass(): Promise<void> {
    const { runtime, clock } = this.o;
    const desired = this.o.desired();
    // No target yet: nothing to do until the hub says.
    if (!desired) {
      this.report(0, 'idle');
      this.schedule(this.o.resyncMs);
      return;
    }
    if (desired.generation !== this.#passedGeneration) {
      this.#passedGeneration = desired.generation;
      this.#lastError = null;
    }
    const { services, generation } = desired;
    runtime.retain(services.map((s) => s.name));
    for (const name of [...this.#status.keys()]) if (!services.some((s) => s.name === name)) this.#status.delete(name);

    const rollout: DesiredService[] = [];
    for (const service of services) {
      const serving = runtime.serving(service.name);
      if (serving?.revision === service.revision && serving.image === service.image) this.setStatus(service, 'running', { servingRevision: service.revision });
      else rollout.push(service);
    }
    if (rollout.length) this.report(generation, 'reconciling');

    let nextRetry = Number.POSITIVE_INFINITY;
    for (const service of rollout) {
      if (this.#closed) return;
      const key = `${service.name}@${service.revision}`;
      const failed = this.#failures.get(key);
      if (failed && failed.retryAt > clock.now()) {
        nextRetry = Math.min(nextRetry, failed.retryAt);
        continue;
      }
      const previous = runtime.serving(service.name)?.revision ?? null;
      const abort = new AbortController();
      this.#inProgress = { service: service.name, revision: service.revision, abort };
      const attempts = (failed?.attempts ?? 0) + 1;
      try {
        await this.rollOut(service, previous, generation, attempts, abort.signal);
        this.#failures.delete(key);
      } catch (err) {
        // Abandoned for a newer desired state (or a stop): not a failure of this revision, and the
        // rest of this pass was planned for the old state: the next pass starts from the new one.
        if (abort.signal.aborted) return;
        // A bad rate or duration is the caller's mistake: it surfaces (unhandled), not as a device failing.
        if (err instanceof SimulatorConfigError) throw err;
        const e = err instanceof EdgemlError ? err : new EdgemlError(ErrorCodes.AGENT_START_FAILED, (err as Error).message);
        const retryAt = this.o.retry ? clock.now() + backoffDelay(attempts - 1, this.o.retry, () => uniform(this.o.seed, drawKey('backoff', this.o.deviceId, key, attempts))) : Number.POSITIVE_INFINITY;
        this.#failures.set(key, { attempts, retryAt });
        nextRetry = Math.min(nextRetry, retryAt);
        this.setStatus(service, 'failed', { servingRevision: previous, error: { code: e.code, message: e.message } });
        this.o.onFailed(service, attempts);
      } finally {
        this.#inProgress = null;
      }
    }
    const phases = services.map((s) => this.#status.get(s.name)?.phase);
    this.report(generation, phases.some((p) => p !== 'running') ? 'failed' : 'converged');
    this.schedule(Number.isFinite(nextRetry) ? Math.max(0, nextRetry - clock.now()) : this.o.resyncMs);
  }

  private async rollOut(service: DesiredService, previous: number | null, generation: number, attempt: number, signal: AbortSignal): Promise<void> {
    const { runtime, clock } = this.o;
    const serving = { servingRevision: previous };
    this.setStatus(service, 'pending', serving);
    // An image still on the device needs no pull: a retry after a failed health check, a rollback.
    if (!runtime.hasImage(service.image)) {
      this.setStatus(service, 'pulling', { ...serving, progress: { current: 0, total: 0 } });
      this.report(generation, 'reconciling');
      await runtime.pull(service, attempt, (progress) => {
        this.setStatus(service, 'pulling', { ...serving, progress });
        if (clock.now() - this.#lastProgressReport >= PROGRESS_REPORT_MS) {
          this.#lastProgressReport = clock.now();
          this.report(generation, 'reconciling');
        }
      }, signal);
    }
    signal.throwIfAborted();
    this.setStatus(service, 'starting', serving);
    this.report(generation, 'reconciling');
    await runtime.startHealthy(service, attempt, signal);
    runtime.promote(service, new Set(this.o.desired()?.services.map((s) => s.image)));
    this.setStatus(service, 'running', { servingRevision: service.revision });
    this.o.onRunning(service);
  }

  private schedule(ms: number): void {
    this.#next?.cancel();
    this.#next = this.o.scheduler.after(ms, () => this.trigger());
  }

  private setStatus(service: DesiredService, phase: ReportedService['phase'], extra: Partial<ReportedService> = {}): void {
    this.#status.set(service.name, {
      name: service.name,
      revision: service.revision,
      image: service.image,
      phase,
      servingRevision: null,
      progress: null,
      error: null,
      ...extra,
    });
  }

  private report(generation: number, phase: ReportedState['phase']): void {
    this.#lastPhase = phase;
    this.#latest = {
      v: PROTOCOL_VERSION,
      observedGeneration: generation,
      phase,
      services: [...this.#status.values()],
      ...(this.#lastError ? { error: this.#lastError } : {}),
    };
    this.o.report(this.#latest);
  }
}
