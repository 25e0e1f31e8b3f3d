/**
 * One-command model updates: the manifest of the image a service runs, with one of its models
 * swapped for another version of that model, becomes a new manifest version; it is built for the
 * platforms of the current image, and the service is updated to the build (a rollout, with the
 * request's strategy and gates; the URL and the key stay). Each update is recorded: the build and
 * the rollout are its steps, and a hub that stops between them carries on at its next start (the
 * builder queues an interrupted build again; the service update is made once).
 */
import { readFile } from 'node:fs/promises';
import type { Deployment } from '../../shared/api/deployments.js';
import { FINISHED_STATUSES, type Image, type Platform } from '../../shared/api/images.js';
import type { ManifestCreate, ManifestVersion } from '../../shared/api/manifests.js';
import type { ModelUpdate } from '../../shared/api/model-updates.js';
import type { RolloutRequest } from '../../shared/api/rollouts.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ImageBuilder } from '../builds/image-builder.js';
import type { ManifestRegistry } from '../registry/manifest-registry.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ActorRecord, ImageRepository, ManifestRepository, ModelRepository, ModelUpdateRecord, ModelUpdateRepository } from '../store/store.js';
import type { Deployments } from './deployments.js';
import { parseModelRef } from '../registry/model-ref.js';

export interface ModelUpdatesDeps {
  updates: ModelUpdateRepository;
  deployments: Pick<Deployments, 'get' | 'update'>;
  images: Pick<ImageRepository, 'get'>;
  manifests: Pick<ManifestRepository, 'resolve'>;
  models: Pick<ModelRepository, 'resolve'>;
  registry: Pick<ManifestRegistry, 'create'>;
  builder: Pick<ImageBuilder, 'submit' | 'get' | 'cancel'>;
  blobs: Pick<BlobStore, 'path'>;
  clock: Clock;
  logger: Logger;
  /** Between two reads of a build's record while waiting for it. */
  pollMs?: number;
}

const DEFAULT_POLL_MS = 500;

/** Why a wait ended early: the hub stops (the update carries on at its next start). */
class Stopping extends Error {
  constructor() {
    super('the hub is stopping');
  }
}

function conflict(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_CONFLICT, message, { httpStatus: 409 });
}

/** What a prepare whose caller gave up throws (the candidate's build is cancelled). */
function prepareCancelled(image?: number): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_BUILD_CANCELLED, image === undefined ? 'the model update was cancelled' : `the model update was cancelled (image ${image} cancelled)`);
}

function errorOf(err: unknown): { code: string; message: string } {
  if (err instanceof EdgemlError) return { code: err.code, message: err.message };
  return { code: ErrorCodes.INTERNAL, message: (err as Error).message ?? String(err) };
}

/** Records made on behalf of an update are not themselves the answer to its Idempotency-Key. */
function plain(actor: ActorRecord): ActorRecord {
  const { idempotency: _mark, ...rest } = actor;
  return rest;
}

export function publicModelUpdate(record: ModelUpdateRecord): ModelUpdate {
  return { ...record, createdBy: plain(record.createdBy) };
}

interface Submitted {
  model: string;
  manifest: ManifestVersion;
  image: Image;
}

export class ModelUpdates {
  readonly #stop = new AbortController();
  readonly #running = new Set<Promise<void>>();

  constructor(private readonly deps: ModelUpdatesDeps) {}

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  /**
   * The new manifest version and its queued build. 404 when the service or model is unknown; 409
   * when the service runs an image this hub did not build (no manifest to start from), when its
   * manifest has no model of that name, or when it already runs that version.
   */
  private async submit(service: string, model: string, actor: ActorRecord): Promise<Submitted> {
    const { deployments, images, manifests, models, registry, builder, blobs } = this.deps;
    const current = await deployments.get(service);
    if (current.deletedAt !== null) throw new EdgemlError(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${service} is not deployed (deleted ${current.deletedAt})`, { httpStatus: 404 });
    const built = current.build === null ? undefined : await images.get(current.build);
    if (!built) {
      throw conflict(`service ${service} runs ${current.image}, an image this hub did not build: there is no manifest to swap a model in (build one with edgeml image build, then edgeml service update --build)`);
    }
    const manifest = await manifests.resolve(built.manifest.name, { version: built.manifest.version });
    const { name, selector } = parseModelRef(model);
    const pinned = manifest.models.find((m) => m.name === name);
    if (!pinned) {
      throw conflict(`service ${service} runs manifest ${manifest.name}:${manifest.version}, which has no model ${name} (it has ${manifest.models.map((m) => m.name).join(', ')}): a model update replaces a model of the same name`);
    }
    const version = await models.resolve(name, selector);
    if (version.digest === pinned.digest) throw conflict(`service ${service} already runs ${name}:${pinned.version}${version.version === pinned.version ? '' : ` (the same files as ${name}:${version.version})`}`);
    const resolved = `${name}:${version.version}`;

    const text = (digest: string) => readFile(blobs.path(digest), 'utf8');
    const body: ManifestCreate = {
      models: manifest.models.map((m) => (m.name === name ? resolved : `${m.name}:${m.version}`)),
      runtime: manifest.runtime,
      score: { filename: manifest.score.filename, content: await text(manifest.score.digest) },
      schema: manifest.schema,
      ...(manifest.deps ? { deps: { filename: manifest.deps.filename, content: await text(manifest.deps.digest) } } : {}),
      env: manifest.env,
      description: `${manifest.name}:${manifest.version} with ${resolved} (model update of service ${service})`,
    };
    const next = await registry.create(manifest.name, body, plain(actor));
    const image = await builder.submit({ manifest: next.name, version: next.version, platforms: Object.keys(built.platforms) as Platform[] }, plain(actor));
    this.deps.logger.info({ service, model: resolved, manifest: `${next.name}:${next.version}`, image: image.id, by: actor.keyId }, 'model update: image build queued');
    return { model: resolved, manifest: next, image };
  }

  /** Resolves once the build is over: the image when it succeeded, else throws its error. */
  private async built(id: number, signal: AbortSignal): Promise<Image> {
    const { builder, clock } = this.deps;
    for (;;) {
      const image = await builder.get(id);
      if (image.status === 'succeeded') return image;
      if (FINISHED_STATUSES.includes(image.status)) {
        throw new EdgemlError(image.error?.code === ErrorCodes.HUB_IMAGE_TEST_FAILED ? ErrorCodes.HUB_IMAGE_TEST_FAILED : ErrorCodes.HUB_BUILD_FAILED, `image ${id} ${image.status}${image.error ? `: ${image.error.message}` : ''}`);
      }
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(new Stopping());
        const onAbort = () => {
          clock.clearTimeout(timer);
          reject(new Stopping());
        };
        const timer = clock.setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, this.deps.pollMs ?? DEFAULT_POLL_MS);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  /**
   * A new manifest version with `model` (NAME:V or NAME@ALIAS) and its image, built; throws when the
   * build fails. When `signal` fires, the build (queued or running) is cancelled and this throws
   * HUB_E_BUILD_CANCELLED; a hub stop throws too, leaving the build for the next start.
   */
  async prepare(service: string, model: string, actor: ActorRecord, signal?: AbortSignal): Promise<{ manifest: { name: string; version: number }; image: Image }> {
    if (signal?.aborted) throw prepareCancelled();
    const { manifest, image } = await this.submit(service, model, actor);
    const done = { manifest: { name: manifest.name, version: manifest.version } };
    const waiting = signal ? AbortSignal.any([this.#stop.signal, signal]) : this.#stop.signal;
    try {
      if (!signal?.aborted) return { ...done, image: await this.built(image.id, waiting) };
    } catch (err) {
      if (!(err instanceof Stopping) || !signal?.aborted) throw err;
    }
    // The caller gave up: the build goes too (one that has just finished cannot be, and that is fine).
    await this.deps.builder.cancel(image.id).catch((err: unknown) => this.deps.logger.info({ image: image.id, err: errorOf(err).message }, 'model update: the cancelled candidate build could not be cancelled'));
    throw prepareCancelled(image.id);
  }

  /** The service update to a built image (a new revision, rolled out); URL and key stay. */
  async rollOut(service: string, imageId: number, rollout: RolloutRequest | undefined, actor: ActorRecord): Promise<Deployment> {
    return this.deps.deployments.update(service, { build: imageId, ...(rollout ? { rollout } : {}) }, plain(actor));
  }

  /** The manifest and the build now (errors answer the request); the wait for the build and the rollout in the background, recorded. */
  async start(service: string, model: string, rollout: RolloutRequest | undefined, actor: ActorRecord): Promise<ModelUpdate> {
    const submitted = await this.submit(service, model, actor);
    const now = this.now();
    const record = await this.deps.updates.add({
      service,
      model: submitted.model,
      manifest: { name: submitted.manifest.name, version: submitted.manifest.version },
      image: submitted.image.id,
      status: 'building',
      rollout: null,
      error: null,
      request: { rollout: rollout ?? null },
      createdAt: now,
      createdBy: actor,
      updatedAt: now,
    });
    this.carryOn(record);
    return publicModelUpdate(record);
  }

  async get(id: number): Promise<ModelUpdate> {
    const record = await this.deps.updates.get(id);
    if (!record) throw new EdgemlError(ErrorCodes.HUB_MODEL_UPDATE_NOT_FOUND, `model update ${id} not found`, { httpStatus: 404 });
    return publicModelUpdate(record);
  }

  async list(): Promise<ModelUpdate[]> {
    return (await this.deps.updates.list()).map(publicModelUpdate);
  }

  /** The update an Idempotency-Key made, if any. */
  async madeBy(made: (actor: ActorRecord) => boolean): Promise<ModelUpdate | undefined> {
    const record = (await this.deps.updates.list()).find((r) => made(r.createdBy));
    return record && publicModelUpdate(record);
  }

  /** Carries on with the updates a stopped hub left building or rolling out. Called once as the hub starts. */
  async resume(): Promise<void> {
    for (const record of await this.deps.updates.list()) {
      if (record.status !== 'building' && record.status !== 'rolling-out') continue;
      this.deps.logger.info({ update: record.id, service: record.service, status: record.status }, 'model update interrupted by a hub stop; carrying on');
      this.carryOn(record);
    }
  }

  /** Stops waiting; what is unfinished carries on at the next start. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all([...this.#running]);
  }

  private carryOn(record: ModelUpdateRecord): void {
    const task = this.run(record).catch((err: unknown) => this.deps.logger.error({ err, update: record.id }, 'model update bookkeeping failed'));
    this.#running.add(task);
    void task.finally(() => this.#running.delete(task));
  }

  private async run(record: ModelUpdateRecord): Promise<void> {
    const { updates, logger } = this.deps;
    const set = (change: Partial<ModelUpdateRecord>) =>
      updates.update(record.id, (r) => {
        Object.assign(r, change, { updatedAt: this.now() });
      });
    try {
      if (record.status === 'building') {
        await this.built(record.image, this.#stop.signal);
        await set({ status: 'rolling-out' });
      }
      const deployment = await this.rollOutOnce(record);
      await set({ status: 'done', rollout: deployment.rollout.id });
      logger.info({ update: record.id, service: record.service, model: record.model, rollout: deployment.rollout.id }, 'model update rolled out');
    } catch (err) {
      if (err instanceof Stopping) return;
      await set({ status: 'failed', error: errorOf(err) });
      logger.warn({ update: record.id, service: record.service, model: record.model, err: errorOf(err).message }, 'model update failed');
    }
  }

  /** A hub that stopped after the service update but before recording it finds the update made. */
  private async rollOutOnce(record: ModelUpdateRecord): Promise<Deployment> {
    const current = await this.deps.deployments.get(record.service);
    if (current.deletedAt === null && current.build === record.image) return current;
    return this.rollOut(record.service, record.image, record.request.rollout ?? undefined, record.createdBy);
  }
}
