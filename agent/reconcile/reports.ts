/**
 * What the agent tells the hub about its services: the status of each with its replica counts, the
 * device's phase and the generation worked on. Reports never block the loop: while the hub is
 * unreachable only the newest state is kept, to be sent on reconnect. What changes often (pull
 * progress, replica counts) is sent at most once a second, the last change always.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { PROTOCOL_VERSION, type DesiredService, type ReplicaCounts, type ReportedService, type ReportedState, type ScaleDecision } from '../../shared/protocol.js';
import { MAX_MESSAGE_CHARS } from './failure.js';

export interface ReportsOptions {
  /** Sends a report; expected to give up at once (not queue) while the hub is unreachable. */
  send: (state: ReportedState) => Promise<void>;
  clock: Clock;
  logger: Logger;
}

const REPORT_EVERY_MS = 1000;

/** What a service's report carries beside its status. */
export interface ReplicaReport {
  replicas: ReplicaCounts;
  lastScale?: ScaleDecision;
}

export class Reports {
  readonly #status = new Map<string, ReportedService>();
  readonly #replicas = new Map<string, ReplicaReport>();
  #lastReport = Number.NEGATIVE_INFINITY;
  /** A report held back by the throttle, sent when the second is up. */
  #trailing: { timer: unknown; generation: number; phase: ReportedState['phase'] } | null = null;
  #lastPhase: ReportedState['phase'] = 'idle';
  #latest: ReportedState | null = null;
  /** Reported until the next accepted desired state. */
  #lastError: { code: string; message: string } | null = null;

  constructor(private readonly o: ReportsOptions) {}

  setStatus(service: DesiredService, phase: ReportedService['phase'], extra: Partial<ReportedService> = {}): void {
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

  /** The service's replica counts and last scaling decision; false when they have not changed. */
  setReplicas(name: string, r: ReplicaReport): boolean {
    const next: ReplicaReport = { replicas: r.replicas, ...(r.lastScale ? { lastScale: r.lastScale } : {}) };
    if (isDeepStrictEqual(this.#replicas.get(name), next)) return false;
    this.#replicas.set(name, next);
    return true;
  }

  /** Forgets the services a desired state no longer names. */
  retain(services: readonly DesiredService[]): void {
    for (const name of [...this.#status.keys(), ...this.#replicas.keys()]) {
      if (!services.some((s) => s.name === name)) {
        this.#status.delete(name);
        this.#replicas.delete(name);
      }
    }
  }

  /** The phase last reported. */
  get phase(): ReportedState['phase'] {
    return this.#lastPhase;
  }

  status(name: string): ReportedService | undefined {
    return this.#status.get(name);
  }

  /** Every service of the desired state runs its desired revision. */
  allRunning(services: readonly DesiredService[]): boolean {
    return services.every((s) => this.#status.get(s.name)?.phase === 'running');
  }

  clearError(): void {
    this.#lastError = null;
  }

  report(generation: number, phase: ReportedState['phase']): void {
    this.#lastPhase = phase;
    this.#lastReport = this.o.clock.now();
    this.cancelTrailing();
    const state: ReportedState = {
      v: PROTOCOL_VERSION,
      observedGeneration: generation,
      phase,
      services: [...this.#status.values()].map((s) => ({ ...s, ...this.#replicas.get(s.name) })),
      ...(this.#lastError ? { error: this.#lastError } : {}),
    };
    this.#latest = state;
    this.send(state);
  }

  /**
   * Pull progress and replica counts change many times a second: the hub hears of them at most once
   * a second, and of the last change when the second is up. The phase stays what was last reported.
   */
  reportSoon(generation: number, phase: ReportedState['phase'] = this.#lastPhase): void {
    const wait = this.#lastReport + REPORT_EVERY_MS - this.o.clock.now();
    if (wait <= 0) return this.report(generation, phase);
    if (this.#trailing) return void Object.assign(this.#trailing, { generation, phase });
    const timer = this.o.clock.setTimeout(() => {
      const t = this.#trailing;
      this.#trailing = null;
      if (t) this.report(t.generation, t.phase);
    }, wait);
    this.#trailing = { timer, generation, phase };
  }

  /** Drops a report held back by the throttle (the agent stops). */
  close(): void {
    this.cancelTrailing();
  }

  private cancelTrailing(): void {
    if (this.#trailing) this.o.clock.clearTimeout(this.#trailing.timer);
    this.#trailing = null;
  }

  /** Something the hub should know that is not about one service (a desired state that was dropped). */
  reportError(generation: number, code: string, message: string): void {
    this.#lastError = { code, message: message.slice(0, MAX_MESSAGE_CHARS) };
    this.report(generation, this.#lastPhase);
  }

  /** The newest state again (after a reconnect: reports made while offline were not sent). */
  reportLatest(): void {
    if (this.#latest) this.send(this.#latest);
  }

  private send(state: ReportedState): void {
    this.o.send(state).catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, 'cannot report to the hub (it gets the next report)'));
  }
}
