/**
 * Creating a manifest version: every part is checked before anything is stored (runtime and file
 * kinds, non-empty scoring file, schema document and sample, model references), the scoring and
 * dependency files go to the blob store, and the model versions are pinned by digest.
 */
import { createHash } from 'node:crypto';
import type { ManifestCreate, ManifestVersion, Runtime } from '../../shared/api/manifests.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ActorRecord, ManifestRepository, ModelRepository } from '../store/store.js';
import { canonicalJson } from './canonical-json.js';
import { checkScoringSchemaIsolated } from './scoring-schema-worker.js';
import { parseModelRef } from './model-ref.js';

/** Generous for any honest schema; a backtracking pattern gets cut off. */
const SCHEMA_CHECK_TIMEOUT_MS = 5000;

const RUNTIME_FILES: Record<Runtime, { score: RegExp; scoreHint: string; deps: string }> = {
  node: { score: /\.(c|m)?js$/, scoreHint: '.js, .mjs or .cjs', deps: 'package.json' },
  python: { score: /\.py$/, scoreHint: '.py', deps: 'requirements.txt' },
};

/** Variables the image and the agent rely on: the listen address and the runtime's own paths. */
const RESERVED_ENV = /^(PORT|HOST|PYTHONPATH|NODE_ENV|EDGEML_.*)$/;

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_MANIFEST_INVALID, message, { httpStatus: 400 });
}

function checkDeps(runtime: Runtime, deps: ManifestCreate['deps']): void {
  if (!deps) return;
  const expected = RUNTIME_FILES[runtime].deps;
  if (deps.filename !== expected) throw invalid(`deps: the ${runtime} runtime takes ${expected}, not ${deps.filename}`);
  if (runtime !== 'node') return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(deps.content);
  } catch (err) {
    throw invalid(`deps: package.json is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('deps: package.json must hold a JSON object');
  const dependencies = (parsed as { dependencies?: unknown }).dependencies;
  if (dependencies !== undefined && (typeof dependencies !== 'object' || dependencies === null || Array.isArray(dependencies))) {
    throw invalid('deps: package.json "dependencies" must be an object of name → version');
  }
}

export interface ManifestRegistryDeps {
  manifests: ManifestRepository;
  models: ModelRepository;
  blobs: BlobStore;
  clock: Clock;
}

export class ManifestRegistry {
  constructor(private readonly deps: ManifestRegistryDeps) {}

  async create(name: string, body: ManifestCreate, actor: ActorRecord): Promise<ManifestVersion> {
    const files = RUNTIME_FILES[body.runtime];
    if (!files.score.test(body.score.filename)) throw invalid(`score: the ${body.runtime} runtime runs a ${files.scoreHint} file, not ${body.score.filename}`);
    if (body.score.content.trim() === '') throw invalid(`score: ${body.score.filename} is empty`);
    checkDeps(body.runtime, body.deps);
    for (const name of Object.keys(body.env ?? {})) {
      if (RESERVED_ENV.test(name)) throw invalid(`env: ${name} is set by the scoring runtime and cannot be overridden`);
    }
    const schema = await checkScoringSchemaIsolated(body.schema, SCHEMA_CHECK_TIMEOUT_MS);

    const models: ManifestVersion['models'] = [];
    for (const ref of body.models) {
      const { name: modelName, selector } = parseModelRef(ref);
      // Model files land in $EDGEML_MODEL_DIR/NAME/, so one name can appear only once.
      if (models.some((m) => m.name === modelName)) throw invalid(`models: ${modelName} is listed more than once`);
      let version;
      try {
        version = await this.deps.models.resolve(modelName, selector);
      } catch (err) {
        if (err instanceof EdgemlError && err.code === ErrorCodes.HUB_MODEL_NOT_FOUND) throw invalid(`models: ${ref}: ${err.message}`);
        throw err;
      }
      models.push({ name: modelName, version: version.version, digest: version.digest });
    }

    const score = { filename: body.score.filename, ...(await this.deps.blobs.putBytes(Buffer.from(body.score.content, 'utf8'))) };
    const deps = body.deps ? { filename: body.deps.filename, ...(await this.deps.blobs.putBytes(Buffer.from(body.deps.content, 'utf8'))) } : null;
    const env = body.env ?? {};
    const content = { runtime: body.runtime, models, score, deps, schema, env };
    const digest = `sha256:${createHash('sha256').update(canonicalJson(content)).digest('hex')}`;

    return this.deps.manifests.addVersion({
      name,
      digest,
      ...content,
      description: body.description ?? '',
      createdAt: new Date(this.deps.clock.now()).toISOString(),
      createdBy: actor,
    });
  }
}
