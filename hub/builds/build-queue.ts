/**
 * One build at a time, in submission order: the queue behind image builds and trainer builds. It
 * holds the running build's controller and progress, stops it without an outcome on a hub stop, and
 * at start takes back what an earlier run left: queued records are queued again, interrupted ones
 * too, up to MAX_ATTEMPTS, then failed, so a build that takes the hub down cannot do so forever.
 * The records, the build itself and its outcome are the adapter's.
 */
import type { Logger } from '../../shared/logger.js';
import type { BuildLogId, BuildLogs } from './build-log.js';
import { BuildProgressTracker } from './build-progress.js';

/** Hub starts a build may be interrupted by before it is failed instead of run again. */
export const MAX_ATTEMPTS = 3;

/** Why a running build's signal was aborted: a cancel records an outcome, a stop does not. */
export type AbortReason = 'cancel' | 'stop';

export interface RunningBuild<K> {
  key: K;
  controller: AbortController;
  progress: BuildProgressTracker;
  done: Promise<void>;
}

/** What the queue needs of the records it builds (`K`: what is queued, `R`: the stored record). */
export interface BuildRecords<K, R> {
  /** `image build`, `trainer build`: the subject of the queue's log messages. */
  what: string;
  list(): Promise<R[]>;
  key(record: R): K;
  /** Names the build in the logs (BuildLogs) and in lookups. */
  id(key: K): BuildLogId;
  /** Fields naming the build in the hub's log. */
  describe(key: K): Record<string, unknown>;
  /** `interrupted`: started by an earlier run that did not finish it. */
  state(record: R): 'queued' | 'interrupted' | 'finished';
  attempts(record: R): number;
  /** Stores an interrupted record as queued. */
  requeue(key: K): Promise<void>;
  /** Stores an interrupted record as failed with this message. */
  giveUp(key: K, message: string): Promise<void>;
  /** Runs the build and stores its outcome; a stop (signal aborted with `stop`) stores none. */
  run(running: RunningBuild<K>): Promise<void>;
}

export class BuildQueue<K, R> {
  readonly #queue: K[] = [];
  #running: RunningBuild<K> | undefined;
  #stopping = false;

  constructor(
    private readonly records: BuildRecords<K, R>,
    private readonly deps: { logs: BuildLogs; logger: Logger },
  ) {}

  /** Queues what an earlier run left queued or interrupted (failing what was interrupted too often), then starts. */
  async start(): Promise<void> {
    const { records } = this;
    const { logger } = this.deps;
    for (const record of await records.list()) {
      const key = records.key(record);
      const state = records.state(record);
      const attempts = records.attempts(record);
      if (state === 'queued') {
        this.#queue.push(key);
      } else if (state === 'interrupted' && attempts >= MAX_ATTEMPTS) {
        await records.giveUp(key, `the hub stopped during each of ${attempts} attempts; not started again`);
        logger.warn({ ...records.describe(key), attempts }, `${records.what} interrupted too often; marked failed`);
      } else if (state === 'interrupted') {
        await records.requeue(key);
        logger.info(records.describe(key), `${records.what} interrupted by a hub stop; queued again`);
        this.#queue.push(key);
      }
    }
    this.kick();
  }

  /** Stops the running build without recording an outcome (the next start runs it again); starts no other. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.deps.logs.abandonAll();
    const running = this.#running;
    if (!running) return;
    running.controller.abort('stop' satisfies AbortReason);
    await running.done;
  }

  submit(key: K): void {
    this.#queue.push(key);
    this.kick();
  }

  /** The running build, if it is this one. */
  running(id: BuildLogId): RunningBuild<K> | undefined {
    const running = this.#running;
    return running && this.records.id(running.key) === id ? running : undefined;
  }

  /** Takes a build off the queue before it started; false when it was not queued. */
  remove(id: BuildLogId): boolean {
    const at = this.#queue.findIndex((key) => this.records.id(key) === id);
    if (at < 0) return false;
    this.#queue.splice(at, 1);
    return true;
  }

  private kick(): void {
    if (this.#running || this.#stopping) return;
    const key = this.#queue.shift();
    if (key === undefined) return;
    const running: RunningBuild<K> = { key, controller: new AbortController(), progress: new BuildProgressTracker(), done: Promise.resolve() };
    this.#running = running;
    running.done = this.records
      .run(running)
      .catch((err: unknown) => {
        // The store refused a write: the record keeps its last stored state until the next start.
        this.deps.logger.error({ err, ...this.records.describe(key) }, `${this.records.what} bookkeeping failed`);
        this.deps.logs.abandon(this.records.id(key));
      })
      .finally(() => {
        this.#running = undefined;
        this.kick();
      });
  }
}
