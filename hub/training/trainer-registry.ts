/**
 * Trainer versions: a recipe is checked, its files go to the blob store, and the version is stored
 * with its image `queued`; the builder takes it from there. Other parts of the hub (retraining
 * runs) resolve a trainer here and wait for its image.
 */
import { createHash } from 'node:crypto';
import type { Runtime } from '../../shared/api/manifests.js';
import type { TrainerCreate, TrainerVersion } from '../../shared/api/trainers.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { canonicalJson } from '../registry/canonical-json.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ActorRecord, TrainerRepository, TrainerVersionRecord, VersionSelector } from '../store/store.js';
import type { TrainerBuilder } from './trainer-builder.js';

const RUNTIME_FILES: Record<Runtime, { train: RegExp; trainHint: string; deps: string }> = {
  node: { train: /\.(c|m)?js$/, trainHint: '.js, .mjs or .cjs', deps: 'package.json' },
  python: { train: /\.py$/, trainHint: '.py', deps: 'requirements.txt' },
};

/** The trainer contract's variables, and what the runtimes rely on. */
const RESERVED_ENV = /^(PYTHONPATH|NODE_ENV|EDGEML_.*)$/;

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_TRAINER_INVALID, message, { httpStatus: 400 });
}

/** Everything wrong with a recipe that can be said before anything is stored. */
export function checkTrainerRecipe(body: TrainerCreate): void {
  const files = RUNTIME_FILES[body.runtime];
  if (!files.train.test(body.train.filename)) throw invalid(`train: the ${body.runtime} runtime runs a ${files.trainHint} file, not ${body.train.filename}`);
  if (body.train.content.trim() === '') throw invalid(`train: ${body.train.filename} is empty`);
  if (body.deps) {
    if (body.deps.filename !== files.deps) throw invalid(`deps: the ${body.runtime} runtime takes ${files.deps}, not ${body.deps.filename}`);
    if (body.runtime === 'node') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.deps.content);
      } catch (err) {
        throw invalid(`deps: package.json is not valid JSON: ${(err as Error).message}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('deps: package.json must hold a JSON object');
    }
  }
  for (const name of Object.keys(body.env ?? {})) {
    if (RESERVED_ENV.test(name)) throw invalid(`env: ${name} is set by the trainer runtime and cannot be overridden`);
  }
}

export interface TrainerRegistryDeps {
  trainers: TrainerRepository;
  blobs: BlobStore;
  builder: TrainerBuilder;
  clock: Clock;
}

export class TrainerRegistry {
  constructor(private readonly deps: TrainerRegistryDeps) {}

  async create(name: string, body: TrainerCreate, actor: ActorRecord): Promise<TrainerVersion> {
    checkTrainerRecipe(body);
    const { blobs } = this.deps;
    const train = { filename: body.train.filename, ...(await blobs.putBytes(Buffer.from(body.train.content, 'utf8'))) };
    const deps = body.deps ? { filename: body.deps.filename, ...(await blobs.putBytes(Buffer.from(body.deps.content, 'utf8'))) } : null;
    const env = body.env ?? {};
    const content = { runtime: body.runtime, train, deps, env };
    const digest = `sha256:${createHash('sha256').update(canonicalJson(content)).digest('hex')}`;
    const record = await this.deps.trainers.addVersion({
      name,
      digest,
      ...content,
      description: body.description ?? '',
      image: this.deps.builder.queuedImage(),
      createdAt: new Date(this.deps.clock.now()).toISOString(),
      createdBy: actor,
    });
    this.deps.builder.submit(record);
    return this.deps.builder.view(record);
  }

  async list(name?: string): Promise<TrainerVersion[]> {
    return (await this.deps.trainers.list({ name })).map((r) => this.deps.builder.view(r));
  }

  /** HUB_E_TRAINER_NOT_FOUND (404). */
  async resolve(name: string, selector: VersionSelector): Promise<TrainerVersion> {
    return this.deps.builder.view(await this.deps.trainers.resolve(name, selector));
  }

  /**
   * The version once its image is built: resolves with it when the build succeeded, throws
   * HUB_E_BUILD_FAILED when it failed, HUB_E_BUILD_CANCELLED when `signal` ends the wait.
   */
  async waitForImage(name: string, version: number, signal?: AbortSignal): Promise<TrainerVersion> {
    const done = await this.deps.builder.finished(name, version, signal);
    return this.viewOrThrow(done);
  }

  private viewOrThrow(record: TrainerVersionRecord): TrainerVersion {
    if (record.image.status === 'failed') {
      throw new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, `the image of trainer ${record.name}:${record.version} failed to build: ${record.image.error?.message ?? 'no reason recorded'}`);
    }
    return this.deps.builder.view(record);
  }
}
