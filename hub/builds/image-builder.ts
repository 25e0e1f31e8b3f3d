/**
 * The build queue: one image at a time, in submission order. A build renders its context, runs
 * buildx (push included), records the digests and sizes, then smoke-tests every platform. The
 * record moves queued → building → testing → succeeded | failed | cancelled, and each transition
 * is stored before it is reported; the live progress and log are in memory and in the log file.
 *
 * A hub that stops (or crashes) mid-build leaves the record `building` or `testing`; the next start
 * removes what the crash left running and queues the build again (a half-finished build has nothing
 * worth keeping), up to MAX_ATTEMPTS, so a build that takes the hub down cannot do so forever
 * (the queue itself is BuildQueue, shared with trainer builds).
 */
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_PLATFORMS, FINISHED_STATUSES, type Image, type ImageBuildRequest, type SmokeCheck } from '../../shared/api/images.js';
import type { Runtime } from '../../shared/api/manifests.js';
import type { ModelVersion } from '../../shared/api/models.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { errorOf } from '../errors-view.js';
import type { Logger } from '../../shared/logger.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ActorRecord, ImageRecord, ImageRepository, ManifestRepository, ModelRepository } from '../store/store.js';
import type { BuildLogs, LiveBuildLog } from './build-log.js';
import type { BuildProgressTracker } from './build-progress.js';
import { BuildQueue, type AbortReason, type RunningBuild } from './build-queue.js';
import type { ContextInputs } from './build-context.js';
import type { BuildxRequest, BuildxResult } from './buildx.js';
import type { SmokeTestRequest } from './smoke-test.js';

/** The side effects of a build, so the queue's logic can be tested without Docker. */
export interface BuildSteps {
  checkTools(registry: string, signal: AbortSignal): Promise<void>;
  writeContext(dir: string, inputs: ContextInputs): Promise<void>;
  buildx(req: BuildxRequest): Promise<BuildxResult>;
  /** Compressed bytes of each platform's image in the registry. */
  sizes(repository: string, platforms: Record<string, string>, signal: AbortSignal): Promise<Record<string, number>>;
  smokeTest(req: SmokeTestRequest): Promise<SmokeCheck>;
  /** Removes what an earlier run of this hub instance left building (processes, containers). */
  removeLeftovers(instance: string): Promise<{ processes: number; containers: number }>;
}

export interface ImageBuilderOptions {
  /** `HOST:PORT` of the OCI registry. */
  registry: string;
  /** Repository path under the registry: images are `REGISTRY/PREFIX/MANIFEST`. */
  imagePrefix: string;
  baseImages: Record<Runtime, string>;
  extraCaFile?: string | undefined;
  smokeTimeoutMs: number;
  /** Scratch space for build contexts; emptied at start. */
  workDir: string;
  /** Distinguishes this hub's smoke-test containers from another hub's on the same Docker. */
  instance: string;
}

export interface ImageBuilderDeps {
  images: ImageRepository;
  manifests: ManifestRepository;
  models: ModelRepository;
  blobs: BlobStore;
  logs: BuildLogs;
  clock: Clock;
  logger: Logger;
  steps: BuildSteps;
  options: ImageBuilderOptions;
}

/** Short and stable per data directory, so a restarted hub finds its own leftovers. */
export function hubInstanceId(dataDir: string): string {
  return createHash('sha256').update(dataDir).digest('hex').slice(0, 8);
}

export class ImageBuilder {
  readonly #queue: BuildQueue<number, ImageRecord>;

  constructor(private readonly deps: ImageBuilderDeps) {
    const { images, clock } = deps;
    this.#queue = new BuildQueue<number, ImageRecord>(
      {
        what: 'image build',
        list: () => images.list({}),
        key: (record) => record.id,
        id: (id) => id,
        describe: (id) => ({ image: id }),
        state: (record) => (record.status === 'queued' ? 'queued' : record.status === 'building' || record.status === 'testing' ? 'interrupted' : 'finished'),
        attempts: (record) => record.attempts,
        requeue: async (id) => {
          await images.update(id, (r) => {
            r.status = 'queued';
          });
        },
        giveUp: async (id, message) => {
          await images.update(id, (r) => {
            r.status = 'failed';
            r.error = { code: ErrorCodes.HUB_BUILD_FAILED, message };
            r.finishedAt = new Date(clock.now()).toISOString();
          });
        },
        run: (running) => this.run(running),
      },
      deps,
    );
  }

  /** Clears what a previous run left (processes, containers, scratch space) and queues its unfinished builds. */
  async start(): Promise<void> {
    const { logger, options } = this.deps;
    const { processes, containers } = await this.deps.steps.removeLeftovers(options.instance);
    if (processes || containers) logger.info({ processes, containers }, 'removed what an earlier run of this hub left building');
    await rm(options.workDir, { recursive: true, force: true });
    await mkdir(options.workDir, { recursive: true });
    await this.#queue.start();
  }

  /** Stops the running build without recording an outcome (the next start runs it again); starts no other. */
  stop(): Promise<void> {
    return this.#queue.stop();
  }

  async submit(request: ImageBuildRequest, actor: ActorRecord): Promise<Image> {
    const { manifests, models, images, clock, options } = this.deps;
    const manifest = await manifests.resolve(request.manifest, request.version === undefined ? { latest: true } : { version: request.version });
    // The manifest pins its models, and a pinned version cannot be deleted; checked anyway.
    for (const ref of manifest.models) await models.resolve(ref.name, { version: ref.version });
    const platforms = request.platforms ?? DEFAULT_PLATFORMS;
    const record = await images.add({
      status: 'queued',
      manifest: { name: manifest.name, version: manifest.version, digest: manifest.digest },
      runtime: manifest.runtime,
      models: manifest.models,
      repository: `${options.registry}/${options.imagePrefix}/${manifest.name}`,
      tags: [`v${manifest.version}`, ...(request.tags ?? []).filter((t) => t !== `v${manifest.version}`)],
      ref: null,
      digest: null,
      platforms: Object.fromEntries(platforms.map((p) => [p, null])),
      sizes: {},
      checks: {},
      baseImage: options.baseImages[manifest.runtime],
      error: null,
      createdAt: new Date(clock.now()).toISOString(),
      createdBy: actor,
      startedAt: null,
      finishedAt: null,
      durationMs: null,
      attempts: 0,
    });
    this.deps.logger.info({ image: record.id, manifest: `${manifest.name}:${manifest.version}`, platforms, by: actor.keyId }, 'image build queued');
    this.#queue.submit(record.id);
    return this.view(record);
  }

  /** The stored record with live progress when it is the running build. */
  view(record: ImageRecord): Image {
    // The outcome is stored a moment before the run lets go of the build: a finished image has no progress.
    const running = this.#queue.running(record.id);
    const live = running && !FINISHED_STATUSES.includes(record.status) ? running.progress.snapshot() : null;
    return { ...record, progress: live };
  }

  async get(id: number): Promise<Image> {
    const record = await this.deps.images.get(id);
    if (!record) throw new EdgemlError(ErrorCodes.HUB_IMAGE_NOT_FOUND, `image ${id} not found`, { httpStatus: 404 });
    return this.view(record);
  }

  /** A queued build is cancelled at once; a running one is stopped and answered once it has. */
  async cancel(id: number): Promise<Image> {
    const record = await this.get(id);
    if (FINISHED_STATUSES.includes(record.status)) {
      throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `image ${id} has already ${record.status === 'cancelled' ? 'been cancelled' : record.status}`, { httpStatus: 409 });
    }
    const running = this.#queue.running(id);
    if (running) {
      running.controller.abort('cancel' satisfies AbortReason);
      await running.done;
      const after = await this.get(id);
      if (after.status !== 'cancelled') {
        throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `image ${id} ${after.status === 'queued' ? 'was interrupted by a hub stop' : `had already ${after.status}`} before the cancel took effect`, {
          httpStatus: 409,
        });
      }
      return after;
    }
    this.#queue.remove(id);
    const now = new Date(this.deps.clock.now()).toISOString();
    const cancelled = await this.deps.images.update(id, (r) => {
      r.status = 'cancelled';
      r.error = { code: ErrorCodes.HUB_BUILD_CANCELLED, message: 'cancelled before it started' };
      r.finishedAt = now;
    });
    this.deps.logs.abandon(id);
    this.deps.logger.info({ image: id }, 'queued image build cancelled');
    return this.view(cancelled);
  }

  private async run({ key: id, controller, progress }: RunningBuild<number>): Promise<void> {
    const { images, logs, clock, logger, options } = this.deps;
    const signal = controller.signal;
    const started = clock.now();
    const record = await images.update(id, (r) => {
      r.status = 'building';
      r.startedAt = new Date(started).toISOString();
      r.attempts += 1;
      r.error = null;
      r.ref = null;
      r.digest = null;
      r.platforms = Object.fromEntries(Object.keys(r.platforms).map((p) => [p, null]));
      r.sizes = {};
      r.checks = {};
    });
    const log = logs.begin(id);
    try {
      const platforms = Object.keys(record.platforms);
      log.note(`image ${id} from manifest ${record.manifest.name}:${record.manifest.version} for ${platforms.join(', ')} (attempt ${record.attempts})`);
      logger.info({ image: id, attempt: record.attempts }, 'image build started');
      const contextDir = join(options.workDir, String(id));
      let outcome: Pick<ImageRecord, 'status' | 'error'> | undefined;
      try {
        outcome = await this.build(record, { contextDir, signal, progress, log });
      } catch (err) {
        const reason = signal.reason as AbortReason | undefined;
        if (signal.aborted && reason === 'stop') {
          log.note('the hub is stopping; this build runs again at its next start');
        } else if (signal.aborted) {
          outcome = { status: 'cancelled', error: { code: ErrorCodes.HUB_BUILD_CANCELLED, message: 'cancelled while it was running' } };
        } else {
          outcome = { status: 'failed', error: errorOf(err) };
        }
      } finally {
        await rm(contextDir, { recursive: true, force: true }).catch((err: unknown) => logger.warn({ err, dir: contextDir }, 'cannot remove a build context'));
      }
      if (!outcome) return;
      const finished = clock.now();
      const { status, error } = outcome;
      log.note(`image ${id} ${status}${error ? `: ${error.message}` : ''}`);
      // Recorded before the log ends: a follower that sees the end reads the outcome next.
      await images.update(id, (r) => {
        r.status = status;
        r.error = error;
        r.finishedAt = new Date(finished).toISOString();
        r.durationMs = finished - started;
      });
      logger.info({ image: id, status, error: error?.message, durationMs: finished - started }, 'image build finished');
    } finally {
      await logs.end(id);
    }
  }

  private async build(
    record: ImageRecord,
    ctx: { contextDir: string; signal: AbortSignal; progress: BuildProgressTracker; log: LiveBuildLog },
  ): Promise<Pick<ImageRecord, 'status' | 'error'>> {
    const { images, manifests, models, blobs, steps, options } = this.deps;
    const { contextDir, signal, progress, log } = ctx;
    const platforms = Object.keys(record.platforms);
    const write = (line: string) => log.write(line);
    const phase = (text: string) => {
      progress.phase(text);
      log.note(`${text}`);
    };

    phase('checking Docker, buildx and the registry');
    await steps.checkTools(options.registry, signal);

    phase('writing the build context');
    const manifest = await manifests.resolve(record.manifest.name, { version: record.manifest.version });
    const pinned: ModelVersion[] = [];
    for (const ref of manifest.models) pinned.push(await models.resolve(ref.name, { version: ref.version }));
    await rm(contextDir, { recursive: true, force: true });
    await steps.writeContext(contextDir, { manifest, models: pinned, platforms, baseImage: record.baseImage, blobs, log: write, signal });

    phase(`building and pushing ${record.repository}`);
    const built = await steps.buildx({
      contextDir,
      platforms,
      tags: record.tags.map((t) => `${record.repository}:${t}`),
      baseImage: record.baseImage,
      extraCaFile: options.extraCaFile,
      onLog: (line) => {
        write(line);
        progress.line(line);
      },
      signal,
    });
    const missing = platforms.filter((p) => !built.platforms[p]);
    if (missing.length) throw new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, `the pushed index has no image for ${missing.join(', ')}`);
    const sizes = await steps.sizes(record.repository, built.platforms, signal);
    const ref = `${record.repository}@${built.digest}`;
    await images.update(record.id, (r) => {
      r.status = 'testing';
      r.digest = built.digest;
      r.ref = ref;
      r.platforms = Object.fromEntries(platforms.map((p) => [p, built.platforms[p]!]));
      r.sizes = sizes;
    });

    const checks: Record<string, SmokeCheck> = {};
    for (const platform of platforms) {
      phase(`testing ${platform}: running the image and scoring the sample`);
      const check = await steps.smokeTest({
        ref: `${record.repository}@${built.platforms[platform]!}`,
        platform,
        sample: manifest.schema.sample,
        containerName: `edgeml-smoke-${options.instance}-${record.id}-${platform.replace(/\W/g, '-')}`,
        hubInstance: options.instance,
        timeoutMs: options.smokeTimeoutMs,
        log: write,
        signal,
      });
      checks[platform] = check;
      log.note(`${platform}: ${check.status}: ${check.message}`);
      await images.update(record.id, (r) => {
        r.checks = { ...checks };
      });
    }
    const failed = platforms.filter((p) => checks[p]!.status === 'failed');
    if (failed.length === 0) return { status: 'succeeded', error: null };
    return {
      status: 'failed',
      error: {
        code: ErrorCodes.HUB_IMAGE_TEST_FAILED,
        message: `the sample did not score on ${failed.map((p) => `${p} (${checks[p]!.message})`).join(', ')}`,
      },
    };
  }
}
