/**
 * Retraining jobs: stored, triggered (a cron schedule, a count of new labels, by hand) and run one
 * run at a time on the hub's Docker. A run's status and stage are stored as it goes; its log is
 * kept like a build log and can be followed. A run the hub was in the middle of when it stopped
 * (or was killed) ends `failed` at the next start, never stays `running` (or `promoted`, when the
 * service runs its candidate's image already: the rollout had started); a queued one still runs.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ACTIVE_RUN_STATUSES, RETRAINING_DEFAULTS, type RetrainingJob, type RetrainingJobCreate, type RetrainingRun, type RunTrigger } from '../../shared/api/retraining.js';
import { rolloutRequestProblem } from '../../shared/api/rollouts.js';
import type { Clock } from '../../shared/clock.js';
import { parseDuration } from '../../shared/duration.js';
import { parseSize } from '../../shared/size.js';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { BuildLogs, LiveBuildLog } from '../builds/build-log.js';
import { pointerProblem } from '../../shared/json-pointer.js';
import { parsePinnedRef } from '../registry/model-ref.js';
import type { ActorRecord, RetrainingJobRecord, RetrainingRepository, RetrainingRunRecord } from '../store/store.js';
import { executeRun, type RunPorts } from './run-pipeline.js';
import type { ScheduledTask, Scheduler } from './scheduler.js';

/** How often jobs with --min-new-labels count the labels that arrived since their last run. */
const LABEL_POLL_MS = 5_000;

export interface RetrainingDeps {
  repo: RetrainingRepository;
  ports: RunPorts;
  /** Checks what a job names when it is created (service deployed, trainer, datasets). */
  check: { service(name: string): Promise<boolean>; trainer(ref: string): Promise<unknown>; dataset(name: string, version: number): Promise<unknown> };
  countLabels(service: string, since: string): Promise<number>;
  /** Training containers a killed hub left behind; removed at start. */
  removeLeftovers(): Promise<number>;
  logs: BuildLogs;
  scheduler: Scheduler;
  clock: Clock;
  /** Runs' work directories go under it (removed once a run ends). */
  workDir: string;
  instance: string;
  logger: Logger;
  labelPollMs?: number;
}

function jobNotFound(name: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_RETRAINING_JOB_NOT_FOUND, `retraining job ${name} not found`, { httpStatus: 404 });
}

function runNotFound(id: number): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_RETRAINING_RUN_NOT_FOUND, `retraining run ${id} not found`, { httpStatus: 404 });
}

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });
}

/** Docker's smallest --memory. */
const MIN_MEMORY = 6 * 1024 * 1024;
/** Far past any training, and within a timer's range. */
const MAX_TIMEOUT = '7d';

function checkLimits(body: RetrainingJobCreate): void {
  if (body.timeout !== undefined && (parseDuration(body.timeout) <= 0 || parseDuration(body.timeout) > parseDuration(MAX_TIMEOUT))) {
    throw invalid(`body.timeout: must be above 0 and at most ${MAX_TIMEOUT}, not ${body.timeout}`);
  }
  if (body.memory !== undefined && parseSize(body.memory) < MIN_MEMORY) throw invalid(`body.memory: must be at least 6m (Docker's smallest limit), not ${body.memory}`);
  const pointer = body.evalOutput === undefined ? null : pointerProblem(body.evalOutput);
  if (pointer) throw invalid(`body.evalOutput: ${pointer}`);
}

/** An actor without its Idempotency-Key mark. */
function actorView(actor: ActorRecord): ActorRecord {
  return { keyId: actor.keyId, keyName: actor.keyName };
}

function runView(run: RetrainingRunRecord): RetrainingRun {
  const { createdBy, cancelledBy, ...rest } = run;
  return { ...rest, createdBy: createdBy && actorView(createdBy), ...(cancelledBy ? { cancelledBy: actorView(cancelledBy) } : {}) };
}

const CANCELLED = 'cancelled by request';
const STOPPED = 'the hub stopped during the run';
/** How long a cancel or a stopping hub waits for the running run to end. */
const STOP_WAIT_MS = 10_000;

export class Retraining {
  readonly #schedules = new Map<string, ScheduledTask>();
  readonly #queue: number[] = [];
  #running: { id: number; controller: AbortController; done: Promise<void> } | null = null;
  #pollTimer: unknown = null;
  #polling = false;
  #closed = false;

  constructor(private readonly deps: RetrainingDeps) {}

  /** Ends what a stopped hub left running, removes its training containers, arms the triggers, resumes the queue. */
  async start(): Promise<void> {
    const { repo, logger } = this.deps;
    const removed = await this.deps.removeLeftovers().catch((err: unknown) => {
      logger.error({ err }, 'cannot remove the training containers a stopped hub left');
      return 0;
    });
    if (removed > 0) logger.info({ removed }, 'removed training containers a stopped hub left');
    for (const run of await repo.listRuns({ active: true })) {
      if (run.status === 'running') await this.endStopped(run);
    }
    for (const job of await repo.listJobs()) this.arm(job);
    for (const run of (await repo.listRuns({ active: true })).reverse()) this.#queue.push(run.id);
    this.pollSoon();
    this.pump();
  }

  /** A run a stopped hub was in the middle of: promoted if its rollout had started, else failed. */
  private async endStopped(run: RetrainingRunRecord): Promise<void> {
    const { ports, logger } = this.deps;
    // A stop between registering the candidate and storing it in the run: its lineage names the run.
    const candidate = run.candidate ?? (run.current && (await ports.registered(run.current.name, run.job, run.id))) ?? null;
    if (run.stage === 'rolling-out' && run.image !== null) {
      const deployment = await ports.deployment(run.service);
      if (deployment?.build === run.image) {
        await this.finish(run.id, { status: 'promoted', rollout: deployment.rollout.id, stage: null, candidate });
        logger.info({ run: run.id, job: run.job, rollout: deployment.rollout.id }, 'retraining run promoted: the hub stopped once its rollout had started');
        return;
      }
    }
    await this.finish(run.id, { status: 'failed', reason: STOPPED, candidate });
    logger.warn({ run: run.id, job: run.job }, 'retraining run failed: the hub stopped during it');
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const task of this.#schedules.values()) task.stop();
    this.#schedules.clear();
    if (this.#pollTimer !== null) this.deps.clock.clearTimeout(this.#pollTimer);
    // The next start ends a run the stop could not wait for, as it would after a crash.
    await this.stopRunning(STOPPED);
  }

  /**
   * Aborts the running run and waits a while for it to end. A run waiting on its candidate's image
   * build stops only once the build is over: nobody waits that long.
   */
  private async stopRunning(reason: string): Promise<void> {
    const running = this.#running;
    if (!running) return;
    running.controller.abort(new Error(reason));
    let timer: unknown;
    await Promise.race([running.done, new Promise<void>((resolve) => (timer = this.deps.clock.setTimeout(resolve, STOP_WAIT_MS)))]);
    this.deps.clock.clearTimeout(timer);
  }

  async createJob(body: RetrainingJobCreate, actor: ActorRecord): Promise<RetrainingJob> {
    const { check, scheduler } = this.deps;
    if (body.schedule !== undefined && !scheduler.validate(body.schedule)) throw invalid(`schedule ${JSON.stringify(body.schedule)}: not a cron expression (e.g. "0 3 * * *")`);
    // Checked now, not when a run needs them hours later.
    const rolloutProblem = body.rollout && rolloutRequestProblem(body.rollout, 'body.rollout');
    if (rolloutProblem) throw invalid(rolloutProblem);
    checkLimits(body);
    if (!(await check.service(body.service))) throw new EdgemlError(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${body.service} is not deployed`, { httpStatus: 404 });
    await check.trainer(body.trainer);
    for (const ref of body.datasets ?? []) {
      const { name, version } = parsePinnedRef(ref);
      await check.dataset(name, version);
    }
    const now = new Date(this.deps.clock.now()).toISOString();
    const job = await this.deps.repo.addJob({
      name: body.name,
      service: body.service,
      trainer: body.trainer,
      datasets: body.datasets ?? [],
      schedule: body.schedule ?? null,
      minNewLabels: body.minNewLabels ?? null,
      evalMetric: body.evalMetric ?? RETRAINING_DEFAULTS.evalMetric,
      evalOutput: body.evalOutput ?? RETRAINING_DEFAULTS.evalOutput,
      evalFraction: body.evalFraction ?? RETRAINING_DEFAULTS.evalFraction,
      minImprovement: body.minImprovement ?? RETRAINING_DEFAULTS.minImprovement,
      params: body.params ?? {},
      model: body.model ?? null,
      timeout: body.timeout ?? RETRAINING_DEFAULTS.timeout,
      memory: body.memory ?? RETRAINING_DEFAULTS.memory,
      cpus: body.cpus ?? RETRAINING_DEFAULTS.cpus,
      rollout: body.rollout ?? null,
      labelsSince: now,
      createdAt: now,
      createdBy: actor,
    });
    this.deps.logger.info({ job: job.name, service: job.service, trainer: job.trainer, schedule: job.schedule, minNewLabels: job.minNewLabels }, 'retraining job created');
    this.arm(job);
    return this.jobView(job);
  }

  async listJobs(): Promise<RetrainingJob[]> {
    return Promise.all((await this.deps.repo.listJobs()).map((j) => this.jobView(j)));
  }

  async getJob(name: string): Promise<RetrainingJob> {
    const job = await this.deps.repo.getJob(name);
    if (!job) throw jobNotFound(name);
    return this.jobView(job);
  }

  async listRuns(job: string | undefined): Promise<RetrainingRun[]> {
    if (job !== undefined && !(await this.deps.repo.getJob(job))) throw jobNotFound(job);
    return (await this.deps.repo.listRuns({ job })).map(runView);
  }

  async getRun(id: number): Promise<RetrainingRun> {
    const run = await this.deps.repo.getRun(id);
    if (!run) throw runNotFound(id);
    return runView(run);
  }

  /** The job a create under an Idempotency-Key stored (its `createdBy` carries the mark), if any. */
  async jobMadeBy(made: (actor: ActorRecord) => boolean): Promise<{ by: ActorRecord; body: RetrainingJob } | undefined> {
    const job = (await this.deps.repo.listJobs()).find((j) => made(j.createdBy));
    return job && { by: job.createdBy, body: await this.jobView(job) };
  }

  /** The run a start by hand (`by: 'createdBy'`) or a cancel (`'cancelledBy'`) under an Idempotency-Key stored, if any. */
  async runMadeBy(by: 'createdBy' | 'cancelledBy', made: (actor: ActorRecord) => boolean): Promise<{ by: ActorRecord; body: RetrainingRun } | undefined> {
    for (const run of await this.deps.repo.listRuns({})) {
      const actor = run[by];
      if (actor && made(actor)) return { by: actor, body: runView(run) };
    }
    return undefined;
  }

  /** `retrain run JOB`: a run queued now; 409 while the job has one queued or running (the store checks it). */
  async runNow(name: string, actor: ActorRecord): Promise<RetrainingRun> {
    const job = await this.deps.repo.getJob(name);
    if (!job) throw jobNotFound(name);
    return runView(await this.enqueue(job, 'manual', actor));
  }

  /**
   * A queued run ends at once; a running one is stopped (its training container killed). A run
   * that has not ended after the wait (a step that stops only when it is over) comes back still
   * `running`: it ends `cancelled` when that step stops.
   */
  async cancel(id: number, actor: ActorRecord): Promise<RetrainingRun> {
    const run = await this.deps.repo.getRun(id);
    if (!run) throw runNotFound(id);
    if (!ACTIVE_RUN_STATUSES.includes(run.status)) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `retraining run ${id} is over (${run.status})`, { httpStatus: 409 });
    if (this.#running?.id === id) {
      // Stored before the abort: a retried cancel finds it, whatever end the run reaches.
      await this.deps.repo.updateRun(id, (r) => {
        r.cancelledBy = actor;
      });
      await this.stopRunning(CANCELLED);
      return this.getRun(id);
    }
    const index = this.#queue.indexOf(id);
    if (index >= 0) this.#queue.splice(index, 1);
    this.deps.logs.abandon(id);
    return runView(await this.finish(id, { status: 'cancelled', reason: CANCELLED, cancelledBy: actor }));
  }

  /** The run's log; with `follow`, open until the run ends. */
  async log(id: number, follow: boolean): Promise<Readable> {
    const run = await this.getRun(id);
    return this.deps.logs.read(id, { follow, pending: run.status === 'queued' });
  }

  private async jobView(job: RetrainingJobRecord): Promise<RetrainingJob> {
    const [last] = await this.deps.repo.listRuns({ job: job.name });
    const { createdBy, ...rest } = job;
    return { ...rest, lastRun: last ? runView(last) : null, createdBy: actorView(createdBy) };
  }

  private arm(job: RetrainingJobRecord): void {
    if (job.schedule === null || this.#closed) return;
    this.#schedules.set(
      job.name,
      this.deps.scheduler.schedule(job.schedule, () => void this.trigger(job.name, 'schedule')),
    );
  }

  /** A trigger's run; none while the job has one queued or running (the trigger is not lost: the next one comes). */
  private async trigger(name: string, trigger: Exclude<RunTrigger, 'manual'>): Promise<void> {
    try {
      const job = await this.deps.repo.getJob(name);
      if (!job || this.#closed) return;
      await this.enqueue(job, trigger, null);
    } catch (err) {
      if (isEdgemlError(err, ErrorCodes.HUB_CONFLICT)) return void this.deps.logger.info({ job: name, trigger }, 'retraining trigger skipped: the job has a run queued or running');
      this.deps.logger.error({ err, job: name, trigger }, 'cannot start a retraining run');
    }
  }

  /** HUB_E_CONFLICT (409) while the job has a run queued or running. */
  private async enqueue(job: RetrainingJobRecord, trigger: RunTrigger, actor: ActorRecord | null): Promise<RetrainingRunRecord> {
    const now = new Date(this.deps.clock.now()).toISOString();
    const run = await this.deps.repo.addRun(
      {
        job: job.name,
        service: job.service,
        trigger,
        status: 'queued',
        stage: null,
        rows: null,
        labels: null,
        current: null,
        candidate: null,
        image: null,
        evaluation: null,
        rollout: null,
        reason: null,
        createdAt: now,
        startedAt: null,
        finishedAt: null,
        createdBy: actor,
      },
      // Labels after now count toward the next run.
      now,
    );
    this.deps.logger.info({ job: job.name, run: run.id, trigger }, 'retraining run queued');
    this.#queue.push(run.id);
    this.pump();
    return run;
  }

  private pollSoon(): void {
    if (this.#closed) return;
    this.#pollTimer = this.deps.clock.setTimeout(() => void this.pollLabels(), this.deps.labelPollMs ?? LABEL_POLL_MS);
  }

  /** Counts new labels of each --min-new-labels job; one poll at a time. */
  async pollLabels(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      for (const job of await this.deps.repo.listJobs()) {
        if (job.minNewLabels === null || this.#closed) continue;
        try {
          const count = await this.deps.countLabels(job.service, job.labelsSince);
          if (count >= job.minNewLabels) {
            this.deps.logger.info({ job: job.name, labels: count, since: job.labelsSince }, 'new labels reached the job threshold');
            await this.trigger(job.name, 'labels');
          }
        } catch (err) {
          this.deps.logger.error({ err, job: job.name }, 'cannot count the new labels of a retraining job');
        }
      }
    } finally {
      this.#polling = false;
      this.pollSoon();
    }
  }

  private pump(): void {
    if (this.#running || this.#closed) return;
    const id = this.#queue.shift();
    if (id === undefined) return;
    const controller = new AbortController();
    const done = this.execute(id, controller.signal)
      .catch((err: unknown) => this.deps.logger.error({ err, run: id }, 'retraining run bookkeeping failed'))
      .finally(() => {
        this.#running = null;
        this.pump();
      });
    this.#running = { id, controller, done };
  }

  private async finish(id: number, end: Partial<RetrainingRunRecord>): Promise<RetrainingRunRecord> {
    const at = new Date(this.deps.clock.now()).toISOString();
    return this.deps.repo.updateRun(id, (r) => {
      Object.assign(r, end, { finishedAt: at });
    });
  }

  private async execute(id: number, signal: AbortSignal): Promise<void> {
    const { repo, logs, logger } = this.deps;
    const queued = await repo.getRun(id);
    if (!queued || queued.status !== 'queued') return;
    const job = await repo.getJob(queued.job);
    if (!job) return void (await this.finish(id, { status: 'failed', reason: `job ${queued.job} no longer exists` }));
    const startedAt = new Date(this.deps.clock.now()).toISOString();
    // Live before the run shows `running`: a follower of a running run finds its log open.
    const log: LiveBuildLog = logs.begin(id);
    const run = await repo
      .updateRun(id, (r) => {
        r.status = 'running';
        r.startedAt = startedAt;
      })
      .catch(async (err: unknown) => {
        await logs.end(id);
        throw err;
      });
    const workDir = join(this.deps.workDir, String(id));
    logger.info({ job: job.name, run: id, trigger: run.trigger }, 'retraining run started');
    try {
      log.note(`run ${id} of job ${job.name} (${run.trigger}) on service ${job.service}`);
      await rm(workDir, { recursive: true, force: true });
      await mkdir(workDir, { recursive: true });
      const end = await executeRun(this.deps.ports, {
        job,
        run,
        workDir,
        instance: this.deps.instance,
        log: (line) => log.write(line),
        note: (text) => log.note(text),
        signal,
        update: async (change) => void (await repo.updateRun(id, change)),
      });
      await this.finish(id, end.status === 'promoted' ? { status: 'promoted', rollout: end.rollout, stage: null } : { status: 'rejected', reason: end.reason, stage: null });
      logger.info({ job: job.name, run: id, status: end.status }, 'retraining run finished');
    } catch (err) {
      const reason = signal.aborted ? ((signal.reason as Error)?.message ?? CANCELLED) : (err as Error).message;
      const status = signal.aborted && reason === CANCELLED ? 'cancelled' : 'failed';
      log.note(`${status}: ${reason}`);
      await this.finish(id, { status, reason });
      if (status === 'failed' && !signal.aborted && !isEdgemlError(err, ErrorCodes.HUB_RETRAINING_FAILED)) logger.error({ err, job: job.name, run: id }, 'retraining run failed');
      else logger.info({ job: job.name, run: id, status, reason }, 'retraining run ended');
    } finally {
      await logs.end(id);
      await rm(workDir, { recursive: true, force: true }).catch((err: unknown) => logger.warn({ err, dir: workDir }, 'cannot remove a retraining work directory'));
    }
  }
}
