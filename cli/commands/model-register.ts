/**
 * `model register`: uploads a file as itself or a directory as a tar stream, with the sha256
 * computed locally first so the hub verifies the bytes it stored are the bytes that were read here.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { Readable } from 'node:stream';
import { MODEL_UPLOAD_TYPES, type ModelUploadQuery, type ModelVersion } from '../../shared/api/models.js';
import { checkFilename, fileError, inputError } from '../args.js';
import { createTransferProgress } from '../progress.js';
import type { ClientContext } from './client-command.js';
import { digestOf } from './digest.js';

export interface RegisterOptions {
  framework?: string;
  description?: string;
  tags: string[];
  runId?: string;
  dataset?: string;
  metrics: string[];
}

const FRAMEWORK_BY_EXTENSION: Record<string, string> = { '.onnx': 'onnx', '.tflite': 'tflite' };

/** What gets uploaded. `open` is called twice (hash, then send), so each call starts a new stream. */
interface UploadSource {
  contentType: (typeof MODEL_UPLOAD_TYPES)[keyof typeof MODEL_UPLOAD_TYPES];
  open(): Readable;
  filename?: string;
  framework?: string;
}

async function uploadSource(path: string): Promise<UploadSource> {
  const info = await stat(path).catch((err: unknown) => {
    throw fileError(path, err);
  });
  if (info.isFile()) {
    const filename = checkFilename(path, basename(path));
    return {
      contentType: MODEL_UPLOAD_TYPES.file,
      open: () => createReadStream(path),
      filename,
      framework: FRAMEWORK_BY_EXTENSION[extname(filename).toLowerCase()],
    };
  }
  if (info.isDirectory()) {
    // tar-stream is loaded only when a directory is actually packed.
    const { packDirectory } = await import('../../shared/archive/index.js');
    // packDirectory is deterministic, so the second pack sends exactly the bytes the first one hashed.
    return { contentType: MODEL_UPLOAD_TYPES.directory, open: () => packDirectory(path) };
  }
  throw inputError(`${path}: not a regular file or a directory`);
}

export async function registerModel(ctx: ClientContext, name: string, path: string, opts: RegisterOptions): Promise<ModelVersion> {
  const source = await uploadSource(path);
  const { digest, size } = await digestOf(source.open(), ctx.signal).catch((err: unknown) => {
    throw fileError(path, err);
  });
  const query: ModelUploadQuery = {
    filename: source.filename,
    framework: opts.framework ?? source.framework,
    description: opts.description,
    tag: opts.tags,
    runId: opts.runId,
    dataset: opts.dataset,
    metric: opts.metrics,
    digest,
  };
  const progress = await createTransferProgress({ enabled: ctx.showProgress, label: `uploading ${name}`, total: size, stream: ctx.io.stderr });
  try {
    return await ctx.client.call('registerModelVersion', {
      params: { name },
      query,
      upload: { contentType: source.contentType, source: source.open, length: size, onProgress: progress.update },
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
      throw inputError(`${path} changed while it was being uploaded; register it again`, err);
    }
    throw fileError(path, err);
  } finally {
    progress.stop();
  }
}
