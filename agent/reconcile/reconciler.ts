/**
 * The reconcile loop: compares the desired services with this device's labelled containers (plan.ts)
 * and applies the steps, one pass at a time. A new revision goes pre-flight (platform, disk) → pull →
 * create → start → /health → promote (recorded on disk) and switch the route → remove the old
 * container → prune images; until the switch, the old container keeps serving, and any failure
 * leaves it serving. Failed services are retried with backoff; one rejected for its platform waits
 * for a new desired state, one rejected for disk space is checked again with backoff. A rollout that a new desired state no longer wants is abandoned at once.
 * Every step is reported with the generation it works on.
 */
import { backoffDelay, defaultBackoff, type BackoffPolicy } from '../../shared/backoff.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { PROTOCOL_VERSION, type DesiredService, type DesiredState, type ReportedService, type ReportedState } from '../../shared/protocol.js';
import type { ContainerRuntime, ManagedContainer } from '../runtime/container-runtime.js';
import { failure, MAX_MESSAGE_CHARS } from './failure.js';
import type { PortAllocator } from './free-port.js';
import type { HealthProbe } from './health-probe.js';
import { waitHealthy } from './health-wait.js';
import { plan } from './plan.js';
import type { PromotedContainers } from './promoted-containers.js';
import type { RouteTable } from './routes.js';

export interface ReconcilerOptions {
  deviceId: string;
  platform: string;
  runtime: ContainerRuntime;
  routes: RouteTable;
  promoted: Pick<PromotedContainers, 'ids' | 'promote' | 'retain' | 'unused' | 'pruned' | 'adoptOnce' | 'pulling'>;
  desired: () => DesiredState | null;
  /** Sends a report; expected to give up at once (not queue) while the hub is unreachable. */
  report: (state: ReportedState) => Promise<void>;
  clock: Clock;
  logger: Logger;
  /** Asks a new container whether it is ready. */
  health: HealthProbe;
  /** Hands out the loopback port a new container listens on. */
  ports: PortAllocator;
  /** How long a new container may take to answer /health 200 (emulated platforms are slow). */
  healthTimeoutMs: number;
  /** Pre-flight: the margin of free disk that must remain on Docker's data root after a pull. */
  minFreeDiskBytes: number;
  stopTimeoutSeconds: number;
  /** A pass also runs this often, to notice drift (a container removed by hand). */
  resyncMs: number;
  backoff?: BackoffPolicy;
}

/** After a pass that failed as a whole (Docker unreachable), the next one comes this much later. */
const PASS_RETRY_MS = 5000;
const PROGRESS_REPORT_MS = 1000;
const FAILURE_OUTPUT_LINES = 20;
/**
 * What a pull needs on disk, from the compressed size the registry gives: the compressed layers
 * plus their unpacked copies (about three times larger for the runtime images).
 */
const DISK_PER_COMPRESSED_BYTE = 4;

export class Reconciler {
  readonly #status = new Map<string, ReportedService>();
  /** `service@revision@image` → attempts so far and when the next may start. */
  readonly #failures = new Map<string, { attempts: number; retryAt: number; rejected: boolean }>();
  #running: Promise<void> | null = null;
  #again = false;
  #timer: unknown = null;
  #closed = false;
  #lastProgressReport = 0;
  #lastPhase: ReportedState['phase'] = 'idle';
  #passedGeneration = -1;
  #latest: ReportedState | null = null;
  /** Reported until the next accepted desired state. */
  #lastError: { code: string; message: string } | null = null;
  /** The rollout in progress, so a desired state that drops it can abandon it. */
  #inProgress: { service: string; revision: number; abort: AbortController } | null = null;

  constructor(private readonly o: ReconcilerOptions) {}

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
      this.report(0, 'idle');
      this.schedule(this.o.resyncMs);
      return;
    }
    if (desired.generation !== this.#passedGeneration) {
      this.#passedGeneration = desired.generation;
      this.#lastError = null;
    }
    const services = desired.services;
    const generation = desired.generation;
    const containers = await this.o.runtime.list(this.o.deviceId);
    const adopted = containers.filter((c) => c.running && services.some((s) => s.name === c.service && s.revision === c.revision && s.image === c.image));
    if (await this.o.promoted.adoptOnce(adopted.map((c) => ({ service: c.service, container: c.id, image: c.image })))) {
      if (adopted.length) this.o.logger.info({ containers: adopted.map((c) => c.name) }, 'no record of promoted containers (an upgraded agent): adopted the running ones that match');
    }
    await this.o.promoted.retain(services.map((s) => s.name));
    const steps = plan(services, containers, this.o.promoted.ids());

    for (const name of [...this.#status.keys()]) if (!services.some((s) => s.name === name)) this.#status.delete(name);
    for (const route of this.o.routes.list()) if (!services.some((s) => s.name === route.service)) this.o.routes.delete(route.service);
    for (const { service, container } of steps.keep) {
      this.o.routes.set(service, container.port);
      this.setStatus(service, 'running', { servingRevision: service.revision });
    }
    for (const c of steps.remove) {
      this.o.logger.info({ service: c.service, revision: c.revision, container: c.name }, 'removing container');
      // One container that cannot be removed now is retried by the next pass; the others go on.
      await this.o.runtime.remove(c.id).catch((err: Error) => this.o.logger.warn({ container: c.name, err: err.message }, 'cannot remove a container'));
    }
    await this.prune();
    if (steps.rollout.length) this.report(generation, 'reconciling');

    let nextRetry = Number.POSITIVE_INFINITY;
    for (const { service, previous } of steps.rollout) {
      if (this.#closed) return;
      if (previous && previous.revision !== service.revision) {
        // The old container serves on with its own models, as far as the agent knows them: after a
        // restart it does not, and captures are filed without a model rather than under the new one.
        const prior = this.o.routes.get(service.name);
        const models = prior?.port === previous.port ? prior.models : [];
        this.o.routes.set({ ...service, revision: previous.revision, image: previous.image, models }, previous.port);
      }
      // With the image: after a new hub epoch a revision number may come back with another image.
      const key = `${service.name}@${service.revision}@${service.image}`;
      const failed = this.#failures.get(key);
      if (failed?.rejected) continue;
      if (failed && failed.retryAt > this.o.clock.now()) {
        nextRetry = Math.min(nextRetry, failed.retryAt);
        continue;
      }
      const abort = new AbortController();
      this.#inProgress = { service: service.name, revision: service.revision, abort };
      try {
        await this.rollOut(service, previous, generation, abort.signal);
        this.#failures.delete(key);
      } catch (err) {
        // Abandoned for a newer desired state (or a stop): not a failure of this revision. The rest
        // of this pass was planned for the old state too: the next pass starts from the new one.
        if (abort.signal.aborted) return;
        const e = err instanceof EdgemlError ? err : failure(ErrorCodes.AGENT_START_FAILED, (err as Error).message, err);
        // No variant for this platform never changes; a full disk may be freed, so it is retried.
        const final = e.code === ErrorCodes.AGENT_PLATFORM_UNAVAILABLE;
        const rejected = final || e.code === ErrorCodes.AGENT_DISK_FULL;
        const attempts = (failed?.attempts ?? 0) + 1;
        const retryAt = this.o.clock.now() + backoffDelay(attempts - 1, this.o.backoff ?? defaultBackoff);
        this.#failures.set(key, { attempts, retryAt, rejected: final });
        if (!final) nextRetry = Math.min(nextRetry, retryAt);
        this.setStatus(service, rejected ? 'rejected' : 'failed', { servingRevision: previous?.revision ?? null, error: { code: e.code, message: e.message } });
        this.o.logger.warn({ service: service.name, revision: service.revision, code: e.code, err: e.message, attempts, rejected }, rejected ? 'service rejected' : 'rollout failed; the previous container keeps serving');
      } finally {
        this.#inProgress = null;
      }
    }
    const phases = services.map((s) => this.#status.get(s.name)?.phase);
    this.report(generation, phases.some((p) => p !== 'running') ? 'failed' : 'converged');
    this.schedule(Number.isFinite(nextRetry) ? Math.max(0, nextRetry - this.o.clock.now()) : this.o.resyncMs);
  }

  private async rollOut(service: DesiredService, previous: ManagedContainer | null, generation: number, signal: AbortSignal): Promise<void> {
    const { runtime, platform, logger } = this.o;
    const serving = { servingRevision: previous?.revision ?? null };
    this.setStatus(service, 'pending', serving);

    // An image already here needs no registry: a device offline can still recreate its container.
    if (!(await runtime.hasImage(service.image, platform))) {
      const platforms = await runtime.platforms(service.image).catch((err: Error) => {
        throw failure(ErrorCodes.AGENT_PULL_FAILED, `cannot read ${service.image} from its registry: ${err.message}`, err);
      });
      if (!platforms.includes(platform)) {
        throw failure(ErrorCodes.AGENT_PLATFORM_UNAVAILABLE, `${service.image} has no image for ${platform} (it has ${platforms.join(', ') || 'none'}); nothing was downloaded`);
      }
      await this.checkDisk(service.image);
      await this.o.promoted.pulling(service.image);
      this.setStatus(service, 'pulling', { ...serving, progress: { current: 0, total: 0 } });
      this.report(generation, 'reconciling');
      logger.info({ service: service.name, image: service.image, platform }, 'pulling');
      await runtime
        .pull(service.image, platform, (progress) => {
          this.setStatus(service, 'pulling', { ...serving, progress });
          if (this.o.clock.now() - this.#lastProgressReport >= PROGRESS_REPORT_MS) {
            this.#lastProgressReport = this.o.clock.now();
            this.report(generation, 'reconciling');
          }
        }, signal)
        .catch((err: Error) => {
          throw failure(ErrorCodes.AGENT_PULL_FAILED, `pulling ${service.image} for ${platform} failed: ${err.message}`, err);
        });
    }
    signal.throwIfAborted();

    this.setStatus(service, 'starting', serving);
    this.report(generation, 'reconciling');
    const port = await this.o.ports.next();
    const name = `edgeml-${this.o.deviceId}-${service.name}-r${service.revision}`;
    const id = await runtime
      .create(this.o.deviceId, { name, image: service.image, platform, service: service.name, revision: service.revision, generation, port, limits: service.limits, stopTimeoutSeconds: this.o.stopTimeoutSeconds })
      .catch((err: Error) => {
        throw failure(ErrorCodes.AGENT_START_FAILED, `creating the container failed: ${err.message}`, err);
      });
    try {
      await runtime.start(id);
      await waitHealthy({ runtime, health: this.o.health, clock: this.o.clock, timeoutMs: this.o.healthTimeoutMs }, id, port, signal);
    } catch (err) {
      const output = signal.aborted ? '' : await runtime.tail(id, FAILURE_OUTPUT_LINES);
      // Left for the next pass (it is unpromoted): the report must carry why the rollout failed.
      await runtime.remove(id).catch((removeErr: Error) => logger.warn({ container: name, err: removeErr.message }, 'cannot remove the failed container'));
      const e = err instanceof EdgemlError ? err : failure(ErrorCodes.AGENT_START_FAILED, (err as Error).message, err);
      throw failure(e.code, output.trim() ? `${e.message}; its last output:\n${output.trim()}` : e.message, e.cause ?? e);
    }

    // The switch. Recorded first: a crash from here on keeps this container, and only this one.
    await this.o.promoted.promote(service.name, id, service.image);
    this.o.routes.set(service, port);
    this.setStatus(service, 'running', { servingRevision: service.revision });
    logger.info({ service: service.name, revision: service.revision, port }, 'service switched to the new container');
    if (previous) {
      logger.info({ service: service.name, revision: previous.revision, container: previous.name }, 'removing the previous container');
      // The new one serves already: a failed removal is left for the next pass, not a failed rollout.
      await runtime.remove(previous.id).catch((err: Error) => logger.warn({ container: previous.name, err: err.message }, 'cannot remove the previous container'));
    }
    await this.prune();
  }

  /** Free disk must hold the image and still leave the margin; an image of unknown size needs only the margin. */
  private async checkDisk(image: string): Promise<void> {
    const [free, size] = await Promise.all([this.o.runtime.freeDiskBytes(), this.o.runtime.imageSize(image, this.o.platform)]);
    const needed = (size ?? 0) * DISK_PER_COMPRESSED_BYTE + this.o.minFreeDiskBytes;
    if (free >= needed) return;
    const what = size === null ? `the margin of ${this.o.minFreeDiskBytes} bytes (the image size is unknown)` : `about ${needed} bytes: the image (${size} bytes compressed, unpacked too) plus a margin of ${this.o.minFreeDiskBytes}`;
    throw failure(ErrorCodes.AGENT_DISK_FULL, `only ${free} bytes free where Docker keeps images; the pull needs ${what}; nothing was downloaded`);
  }

  /** Images that fell out of every service's history; one still used by a container stays for now. */
  private async prune(): Promise<void> {
    const wanted = new Set(this.o.desired()?.services.map((s) => s.image));
    for (const image of this.o.promoted.unused()) {
      if (wanted.has(image)) continue;
      try {
        if (!(await this.o.runtime.removeImage(image))) continue;
        await this.o.promoted.pruned(image);
        this.o.logger.info({ image }, 'pruned an image no service keeps');
      } catch (err) {
        this.o.logger.warn({ image, err: (err as Error).message }, 'cannot prune an image');
      }
    }
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

  /** Something the hub should know that is not about one service (a desired state that was dropped). */
  reportError(code: string, message: string): void {
    this.#lastError = { code, message: message.slice(0, MAX_MESSAGE_CHARS) };
    this.report(this.o.desired()?.generation ?? 0, this.#lastPhase);
  }

  /** The newest state again (after a reconnect: reports made while offline were not sent). */
  reportLatest(): void {
    if (this.#latest) this.send(this.#latest);
  }

  /**
   * Never awaited by a pass: while the hub is unreachable the loop goes on, and only the newest
   * state is kept, to be sent on reconnect.
   */
  private report(generation: number, phase: ReportedState['phase']): void {
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

  private send(state: ReportedState): void {
    this.o.report(state).catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, 'cannot report to the hub (it gets the next report)'));
  }
}
