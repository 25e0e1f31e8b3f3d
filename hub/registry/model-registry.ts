/**
 * Registering a model version: the upload streams into the blob store while it is hashed (and,
 * for a directory, checked entry by entry); only a complete, verified upload becomes a blob, and
 * only then is the version recorded. Anything that fails on the way stores nothing.
 */
import type { ModelUploadQuery, ModelVersion } from '../../shared/api/models.js';
import { ArchiveInspector, type ArchiveLimits } from '../../shared/archive/index.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ActorRecord, ModelRepository } from '../store/store.js';
import { keyValues, numericKeyValues } from './key-values.js';

export type ModelKind = 'file' | 'directory';

export interface RegisterRequest {
  name: string;
  kind: ModelKind;
  meta: ModelUploadQuery;
  source: AsyncIterable<Uint8Array>;
  actor: ActorRecord;
}

export interface ModelRegistryDeps {
  models: ModelRepository;
  blobs: BlobStore;
  clock: Clock;
  limits: { maxUploadBytes: number; maxArchiveFiles: number };
}

function invalid(message: string, code: typeof ErrorCodes.HUB_INVALID_REQUEST | typeof ErrorCodes.HUB_DIGEST_MISMATCH = ErrorCodes.HUB_INVALID_REQUEST) {
  return new EdgemlError(code, message, { httpStatus: 400 });
}

export class ModelRegistry {
  constructor(private readonly deps: ModelRegistryDeps) {}

  async register(req: RegisterRequest): Promise<ModelVersion> {
    const { meta } = req;
    // Metadata is checked before a single byte is stored.
    const tags = keyValues('tag', meta.tag);
    const metrics = numericKeyValues('metric', meta.metric);
    if (req.kind === 'file' && !meta.filename) throw invalid('filename: is required for a file upload (the base name of the model file)');
    if (req.kind === 'directory' && meta.filename) throw invalid('filename: applies to a file upload only, not to a directory (tar) upload');

    const { maxUploadBytes, maxArchiveFiles } = this.deps.limits;
    const limits: ArchiveLimits = { maxFiles: maxArchiveFiles, maxBytes: maxUploadBytes };
    const inspector = req.kind === 'directory' ? new ArchiveInspector(limits) : undefined;
    let staged;
    try {
      staged = await this.deps.blobs.stage(req.source, { maxBytes: maxUploadBytes, onChunk: inspector && ((chunk) => inspector.write(chunk)) });
    } catch (err) {
      inspector?.abort(err as Error);
      throw err;
    }

    let files: ModelVersion['files'];
    try {
      if (staged.size === 0) throw invalid('the upload is empty');
      if (meta.digest && meta.digest !== staged.digest) {
        throw invalid(`the upload hashes to ${staged.digest}, not to the digest ${meta.digest} given with it: it was changed or cut in transit`, ErrorCodes.HUB_DIGEST_MISMATCH);
      }
      files = inspector
        ? (await inspector.finish()).filter((e) => e.type === 'file').map((e) => ({ path: e.path, size: e.size, digest: e.digest! }))
        : [{ path: meta.filename!, size: staged.size, digest: staged.digest }];
      await staged.commit();
    } catch (err) {
      inspector?.abort(err as Error);
      await staged.discard();
      throw err;
    }

    return this.deps.models.addVersion({
      name: req.name,
      kind: req.kind,
      digest: staged.digest,
      size: staged.size,
      files,
      framework: meta.framework ?? 'custom',
      description: meta.description ?? '',
      tags,
      lineage: { runId: meta.runId ?? null, dataset: meta.dataset ?? null, metrics },
      createdAt: new Date(this.deps.clock.now()).toISOString(),
      createdBy: req.actor,
    });
  }
}
