/**
 * Builds trainer images, one at a time in submission order: the context (dependencies installed as
 * for a scoring image, the script), buildx for the hub's platform, push. The version's image state
 * moves queued → building → succeeded | failed, each transition stored before it is reported.
 *
 * A hub that stops or crashes mid-build leaves the state `building`; the next start queues it again
 * (what a crash left running is killed by the image builder's start, which runs first: the same
 * process marker covers both), up to MAX_ATTEMPTS, then fails it, so a trainer is never left stuck
 * (the queue is BuildQueue, shared with image builds).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runtime } from '../../shared/api/manifests.js';
import type { TrainerImage, TrainerVersion } from '../../shared/api/trainers.js';
import type { Clock } from '../../shared/clock.js';
import { ErrorCodes } from '../../shared/errors.js';
import { errorOf } from '../errors-view.js';
import type { Logger } from '../../shared/logger.js';
import { buildCancelled } from '../builds/docker-cli.js';
import type { BuildLogs, LiveBuildLog } from '../builds/build-log.js';
import type { BuildProgressTracker } from '../builds/build-progress.js';
import { BuildQueue, type RunningBuild } from '../builds/build-queue.js';
import type { BuildxRequest, BuildxResult } from '../builds/buildx.js';
import type { BlobStore } from '../store/blob-store.js';
import type { TrainerRepository, TrainerVersionRecord } from '../store/store.js';
import type { TrainerContextInputs } from './trainer-image.js';

/** The side effects of a trainer build, so the queue can be tested without Docker. */
export interface TrainerBuildSteps {
  checkTools(registry: string, signal: AbortSignal): Promise<void>;
  writeContext(dir: string, inputs: TrainerContextInputs): Promise<void>;
  buildx(req: BuildxRequest): Promise<BuildxResult>;
}

export interface TrainerBuilderOptions {
  registry: string;
  imagePrefix: string;
  baseImages: Record<Runtime, string>;
  extraCaFile?: string | undefined;
  /** The hub's platform: the only one trainer images are built for. */
  platform: string;
  /** Scratch space for build contexts; emptied at start. */
  workDir: string;
}

export interface TrainerBuilderDeps {
  trainers: TrainerRepository;
  blobs: BlobStore;
  logs: BuildLogs;
  clock: Clock;
  logger: Logger;
  steps: TrainerBuildSteps;
  options: TrainerBuilderOptions;
}

const FINISHED: readonly TrainerImage['status'][] = ['succeeded', 'failed'];

/** Names the version in the queue, the log file and the context directory. */
export function trainerKey(name: string, version: number): string {
  return `${name}-${version}`;
}

interface Queued {
  name: string;
  version: number;
}

export class TrainerBuilder {
  readonly #queue: BuildQueue<Queued, TrainerVersionRecord>;
  readonly #waiters = new Map<string, Set<(record: TrainerVersionRecord) => void>>();

  constructor(private readonly deps: TrainerBuilderDeps) {
    const { trainers, clock } = deps;
    this.#queue = new BuildQueue<Queued, TrainerVersionRecord>(
      {
        what: 'trainer build',
        list: () => trainers.list({}),
        key: ({ name, version }) => ({ name, version }),
        id: ({ name, version }) => trainerKey(name, version),
        describe: ({ name, version }) => ({ trainer: `${name}:${version}` }),
        state: ({ image }) => (image.status === 'queued' ? 'queued' : image.status === 'building' ? 'interrupted' : 'finished'),
        attempts: ({ image }) => image.attempts,
        requeue: async ({ name, version }) => {
          await trainers.updateImage(name, version, (image) => {
            image.status = 'queued';
          });
        },
        giveUp: async ({ name, version }, message) => {
          await trainers.updateImage(name, version, (image) => {
            image.status = 'failed';
            image.error = { code: ErrorCodes.HUB_BUILD_FAILED, message };
            image.finishedAt = new Date(clock.now()).toISOString();
          });
        },
        run: (running) => this.run(running),
      },
      deps,
    );
  }

  /** The image state of a new version. */
  queuedImage(): TrainerImage {
    return { status: 'queued', ref: null, digest: null, platform: this.deps.options.platform, error: null, attempts: 0, startedAt: null, finishedAt: null };
  }

  /** Queues what an earlier run left queued or building (failing what was interrupted too often). */
  async start(): Promise<void> {
    const { options } = this.deps;
    await rm(options.workDir, { recursive: true, force: true });
    await mkdir(options.workDir, { recursive: true });
    await this.#queue.start();
  }

  /** Stops the running build without recording an outcome (the next start runs it again). */
  stop(): Promise<void> {
    return this.#queue.stop();
  }

  submit(record: TrainerVersionRecord): void {
    this.deps.logger.info({ trainer: `${record.name}:${record.version}`, by: record.createdBy.keyId }, 'trainer image build queued');
    this.#queue.submit({ name: record.name, version: record.version });
  }

  /** The stored record with live progress while its image builds. */
  view(record: TrainerVersionRecord): TrainerVersion {
    const { createdBy, ...rest } = record;
    const running = this.#queue.running(trainerKey(record.name, record.version));
    const live = running && !FINISHED.includes(record.image.status) ? running.progress.snapshot() : null;
    return { ...rest, createdBy: { keyId: createdBy.keyId, keyName: createdBy.keyName }, image: { ...record.image, progress: live } };
  }

  /** Resolves with the record once its image succeeded or failed; `signal` ends the wait (HUB_E_BUILD_CANCELLED). */
  async finished(name: string, version: number, signal?: AbortSignal): Promise<TrainerVersionRecord> {
    const key = trainerKey(name, version);
    return new Promise<TrainerVersionRecord>((resolve, reject) => {
      const waiters = this.#waiters.get(key) ?? new Set();
      const onAbort = () => {
        waiters.delete(done);
        reject(buildCancelled());
      };
      const done = (record: TrainerVersionRecord) => {
        signal?.removeEventListener('abort', onAbort);
        waiters.delete(done);
        resolve(record);
      };
      if (signal?.aborted) return reject(buildCancelled());
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.add(done);
      this.#waiters.set(key, waiters);
      // Registered before the read: an outcome stored meanwhile still reaches this waiter.
      this.deps.trainers.resolve(name, { version }).then((record) => {
        if (FINISHED.includes(record.image.status)) done(record);
      }, (err: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        waiters.delete(done);
        reject(err);
      });
    });
  }

  private notify(record: TrainerVersionRecord): void {
    for (const waiter of [...(this.#waiters.get(trainerKey(record.name, record.version)) ?? [])]) waiter(record);
  }

  private async run({ key: { name, version }, controller, progress }: RunningBuild<Queued>): Promise<void> {
    const { trainers, logs, clock, logger, options } = this.deps;
    const key = trainerKey(name, version);
    const signal = controller.signal;
    const record = await trainers.updateImage(name, version, (image) => {
      image.status = 'building';
      image.attempts += 1;
      image.startedAt = new Date(clock.now()).toISOString();
      image.error = null;
      image.ref = null;
      image.digest = null;
    });
    const log = logs.begin(key);
    const contextDir = join(options.workDir, key);
    try {
      log.note(`trainer ${name}:${version} image for ${options.platform} (attempt ${record.image.attempts})`);
      logger.info({ trainer: `${name}:${version}`, attempt: record.image.attempts }, 'trainer image build started');
      let outcome: Pick<TrainerImage, 'status' | 'error' | 'ref' | 'digest'> | undefined;
      try {
        const built = await this.build(record, contextDir, signal, progress, log);
        outcome = { status: 'succeeded', error: null, ...built };
      } catch (err) {
        if (signal.aborted) {
          log.note('the hub is stopping; this build runs again at its next start');
        } else {
          outcome = { status: 'failed', error: errorOf(err), ref: null, digest: null };
        }
      } finally {
        await rm(contextDir, { recursive: true, force: true }).catch((err: unknown) => logger.warn({ err, dir: contextDir }, 'cannot remove a build context'));
      }
      if (!outcome) return;
      const { status, error } = outcome;
      log.note(`trainer ${name}:${version} image ${status}${error ? `: ${error.message}` : ` ${outcome.ref}`}`);
      // Recorded before the log ends: a follower that sees the end reads the outcome next.
      const stored = await trainers.updateImage(name, version, (image) => {
        Object.assign(image, outcome);
        image.finishedAt = new Date(clock.now()).toISOString();
      });
      logger.info({ trainer: `${name}:${version}`, status, error: error?.message, ref: outcome.ref }, 'trainer image build finished');
      this.notify(stored);
    } finally {
      await logs.end(key);
    }
  }

  private async build(
    record: TrainerVersionRecord,
    contextDir: string,
    signal: AbortSignal,
    progress: BuildProgressTracker,
    log: Pick<LiveBuildLog, 'write' | 'note'>,
  ): Promise<{ ref: string; digest: string }> {
    const { steps, options, blobs } = this.deps;
    const write = (line: string) => log.write(line);
    const phase = (text: string) => {
      progress.phase(text);
      log.note(text);
    };
    const repository = `${options.registry}/${options.imagePrefix}/trainer-${record.name}`;
    const baseImage = options.baseImages[record.runtime];
    phase('checking Docker, buildx and the registry');
    await steps.checkTools(options.registry, signal);
    phase('writing the build context');
    await rm(contextDir, { recursive: true, force: true });
    await steps.writeContext(contextDir, { trainer: this.view(record), platform: options.platform, baseImage, blobs, log: write, signal });
    phase(`building and pushing ${repository}`);
    const built = await steps.buildx({
      contextDir,
      platforms: [options.platform],
      tags: [`${repository}:v${record.version}`],
      baseImage,
      extraCaFile: options.extraCaFile,
      onLog: (line) => {
        write(line);
        progress.line(line);
      },
      signal,
    });
    return { ref: `${repository}@${built.digest}`, digest: built.digest };
  }
}
