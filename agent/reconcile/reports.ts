/**
 * What the agent tells the hub about its services: the status of each, the device's phase and the
 * generation worked on. Reports never block the loop: while the hub is unreachable only the newest
 * state is kept, to be sent on reconnect.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { PROTOCOL_VERSION, type DesiredService, type ReportedService, type ReportedState } from '../../shared/protocol.js';
import { MAX_MESSAGE_CHARS } from './failure.js';

export interface ReportsOptions {
  /** Sends a report; expected to give up at once (not queue) while the hub is unreachable. */
  send: (state: ReportedState) => Promise<void>;
  clock: Clock;
  logger: Logger;
}

const PROGRESS_REPORT_MS = 1000;

export class Reports {
  readonly #status = new Map<string, ReportedService>();
  #lastProgressReport = 0;
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

  /** Forgets the services a desired state no longer names. */
  retain(services: readonly DesiredService[]): void {
    for (const name of [...this.#status.keys()]) if (!services.some((s) => s.name === name)) this.#status.delete(name);
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
    const state: ReportedState = {
      v: PROTOCOL_VERSION,
      observedGeneration: generation,
      phase,
      services: [...this.#status.values()],
      ...(this.#lastError ? { error: this.#lastError } : {}),
    };
    this.#latest = state;
    this.send(state);
  }

  /** Pull progress comes many times a second: the hub hears of it at most once a second. */
  reportProgress(generation: number): void {
    if (this.o.clock.now() - this.#lastProgressReport < PROGRESS_REPORT_MS) return;
    this.#lastProgressReport = this.o.clock.now();
    this.report(generation, 'reconciling');
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
