/**
 * Base datasets: a JSONL file of `{input, label}` rows stored as an immutable, content-addressed
 * version `NAME:N` (the file is the blob of its sha256, like a model). The upload streams into the
 * blob store while every line is checked; a file with one bad line stores nothing.
 */
import type { DatasetVersion } from '../../shared/api/datasets.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ActorRecord, DatasetRepository } from '../store/store.js';
import { DatasetLineChecker, datasetLines } from './dataset-lines.js';

export interface RegisterDatasetRequest {
  name: string;
  description?: string | undefined;
  source: AsyncIterable<Uint8Array>;
  actor: ActorRecord;
}

export interface DatasetRegistryDeps {
  datasets: DatasetRepository;
  blobs: Pick<BlobStore, 'stage' | 'openRead'>;
  clock: Clock;
  maxUploadBytes: number;
}

/** A row of a base dataset: `input` and `label`, and whatever else the line holds. */
export interface DatasetRow {
  input: unknown;
  label: unknown;
  [field: string]: unknown;
}

/** `/api/v1/datasets/export/…` is the labelled export: no dataset may take that name. */
export const RESERVED_DATASET_NAMES: readonly string[] = ['export'];

export class DatasetRegistry {
  constructor(private readonly deps: DatasetRegistryDeps) {}

  async register(req: RegisterDatasetRequest): Promise<DatasetVersion> {
    if (RESERVED_DATASET_NAMES.includes(req.name)) {
      throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `dataset name ${JSON.stringify(req.name)} is reserved; choose another`, { httpStatus: 400 });
    }
    const checker = new DatasetLineChecker();
    const staged = await this.deps.blobs.stage(req.source, { maxBytes: this.deps.maxUploadBytes, onChunk: async (chunk) => checker.write(chunk) });
    let rows: number;
    try {
      rows = checker.finish();
      if (rows === 0) throw new EdgemlError(ErrorCodes.HUB_DATASET_INVALID, 'the file has no rows: each line is {"input": …, "label": …}', { httpStatus: 400 });
      await staged.commit();
    } catch (err) {
      await staged.discard();
      throw err;
    }
    return this.deps.datasets.addVersion({
      name: req.name,
      digest: staged.digest,
      size: staged.size,
      rows,
      description: req.description ?? '',
      createdAt: new Date(this.deps.clock.now()).toISOString(),
      createdBy: req.actor,
    });
  }

  /** `version` a number or 'latest'; throws HUB_E_DATASET_NOT_FOUND (404). */
  resolve(name: string, version: number | 'latest'): Promise<DatasetVersion> {
    return this.deps.datasets.resolve(name, version === 'latest' ? { latest: true } : { version });
  }

  /** The version's rows, read from its blob as they are used (checked when it was registered). */
  async *rows(name: string, version: number | 'latest'): AsyncIterable<DatasetRow> {
    const { digest } = await this.resolve(name, version);
    for await (const line of datasetLines(this.deps.blobs.openRead(digest))) if (line.trim() !== '') yield JSON.parse(line) as DatasetRow;
  }
}
