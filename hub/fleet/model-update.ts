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
import type { ManifestCreate } from '../../shared/api/manifests.js';
import type { ModelUpdate } from '../../shared/api/model-updates.js';
import { rolloutRequestProblem, type RolloutRequest } from '../../shared/api/rollouts.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { errorOf } from '../errors-view.js';
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
  images: Pick<ImageRepository, 'get' | 'list'>;
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

/** Records made on behalf of an update are not themselves the answer to its Idempotency-Key. */
function plain(actor: ActorRecord): ActorRecord {
  const { idempotency: _mark, ...rest } = actor;
  return rest;
}

export function publicModelUpdate(record: ModelUpdateRecord): ModelUpdate {
  return { ...record, createdBy: plain(record.createdBy) };
}

/** An update whose manifest version is made and whose build is queued. */
type MadeUpdate = ModelUpdateRecord & { manifest: NonNullable<ModelUpdateRecord['manifest']>; image: number };

const isMade = (record: ModelUpdateRecord): record is MadeUpdate => record.manifest !== null && record.image !== null;

/** What an update makes, worked out before anything is made. */
interface Plan {
  /** The version it resolved to, `NAME:VERSION`. */
  model: string;
  manifestName: string;
  body: ManifestCreate;
  platforms: Platform[];
}

export class ModelUpdates {
  readonly #stop = new AbortController();
  readonly #running = new Set<Promise<void>>();

  constructor(private readonly deps: ModelUpdatesDeps) {}

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  /**
   * The new manifest version's content and the platforms to build, from reads only. 404 when the
   * service or model is unknown; 409 when the service runs an image this hub did not build (no
   * manifest to start from), when its manifest has no model of that name, or when it already runs that version.
   */
  private async plan(service: string, model: string): Promise<Plan> {
    const { deployments, images, manifests, models, blobs } = this.deps;
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
    return { model: resolved, manifestName: manifest.name, body, platforms: Object.keys(built.platforms) as Platform[] };
  }

  private async createManifest(plan: Plan, actor: ActorRecord): Promise<{ name: string; version: number }> {
    const next = await this.deps.registry.create(plan.manifestName, plan.body, plain(actor));
    return { name: next.name, version: next.version };
  }

  private async queueBuild(service: string, plan: Plan, manifest: { name: string; version: number }, actor: ActorRecord): Promise<Image> {
    const image = await this.deps.builder.submit({ manifest: manifest.name, version: manifest.version, platforms: plan.platforms }, plain(actor));
    this.deps.logger.info({ service, model: plan.model, manifest: `${manifest.name}:${manifest.version}`, image: image.id, by: actor.keyId }, 'model update: image build queued');
    return image;
  }

  private set(id: number, change: Partial<ModelUpdateRecord>): Promise<ModelUpdateRecord> {
    return this.deps.updates.update(id, (r) => {
      Object.assign(r, change, { updatedAt: this.now() });
    });
  }

  /**
   * Makes what a recorded update still lacks (its manifest version, then its build), recording
   * each as it is made; on an error the update fails and the error is thrown. A hub that stopped
   * after queueing the build but before recording it finds that build instead of queueing another.
   */
  private async make(record: ModelUpdateRecord, plan?: Plan): Promise<MadeUpdate> {
    try {
      const planned = plan ?? (await this.plan(record.service, record.model));
      let made = record;
      if (made.manifest === null) made = await this.set(made.id, { manifest: await this.createManifest(planned, made.createdBy) });
      if (made.image === null) {
        const manifest = made.manifest!;
        const earlier = (await this.deps.images.list({ manifest: manifest.name })).find((i) => i.manifest.version === manifest.version);
        made = await this.set(made.id, { image: earlier?.id ?? (await this.queueBuild(made.service, planned, manifest, made.createdBy)).id });
      }
      if (!isMade(made)) throw new Error(`model update ${made.id} has no manifest or image after they were made`);
      return made;
    } catch (err) {
      await this.set(record.id, { status: 'failed', error: errorOf(err) });
      this.deps.logger.warn({ update: record.id, service: record.service, model: record.model, err: errorOf(err).message }, 'model update failed before its build was queued');
      throw err;
    }
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
    const plan = await this.plan(service, model);
    const manifest = await this.createManifest(plan, actor);
    const image = await this.queueBuild(service, plan, manifest, actor);
    const done = { manifest };
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

  /**
   * Checks the request, records the update, then makes the manifest and queues the build (errors
   * answer the request; the record fails with them); the wait for the build and the rollout go on
   * in the background. Recorded before anything is made, so a hub stop in between leaves a record
   * the next start finishes, and a retry with the same Idempotency-Key finds it.
   */
  async start(service: string, model: string, rollout: RolloutRequest | undefined, actor: ActorRecord): Promise<ModelUpdate> {
    const problem = rollout && rolloutRequestProblem(rollout, 'body.rollout');
    if (problem) throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, problem, { httpStatus: 400 });
    const plan = await this.plan(service, model);
    const now = this.now();
    const recorded = await this.deps.updates.add({
      service,
      model: plan.model,
      manifest: null,
      image: null,
      status: 'building',
      rollout: null,
      error: null,
      request: { rollout: rollout ?? null },
      createdAt: now,
      createdBy: actor,
      updatedAt: now,
    });
    const record = await this.make(recorded, plan);
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

  /**
   * Carries on with the updates a stopped hub left building or rolling out; one stopped before its
   * build was queued gets its manifest and build made now (or fails). Called once as the hub starts.
   */
  async resume(): Promise<void> {
    for (const record of await this.deps.updates.list()) {
      if (record.status !== 'building' && record.status !== 'rolling-out') continue;
      this.deps.logger.info({ update: record.id, service: record.service, status: record.status }, 'model update interrupted by a hub stop; carrying on');
      const made = isMade(record) ? record : await this.make(record).catch(() => undefined);
      if (made) this.carryOn(made);
    }
  }

  /** Stops waiting; what is unfinished carries on at the next start. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all([...this.#running]);
  }

  private carryOn(record: MadeUpdate): void {
    const task = this.run(record).catch((err: unknown) => this.deps.logger.error({ err, update: record.id }, 'model update bookkeeping failed'));
    this.#running.add(task);
    void task.finally(() => this.#running.delete(task));
  }

  /** Waits for the build of a made update (`image` set), then rolls it out. */
  private async run(record: MadeUpdate): Promise<void> {
    const { logger } = this.deps;
    const set = (change: Partial<ModelUpdateRecord>) => this.set(record.id, change);
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
  private async rollOutOnce(record: MadeUpdate): Promise<Deployment> {
    const current = await this.deps.deployments.get(record.service);
    if (current.deletedAt === null && current.build === record.image) return current;
    return this.rollOut(record.service, record.image, record.request.rollout ?? undefined, record.createdBy);
  }
}
