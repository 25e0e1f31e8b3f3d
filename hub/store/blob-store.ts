/**
 * Content-addressed blobs on disk (`DIR/sha256/HEX`). An upload streams into a temp file while it
 * is hashed, so memory stays flat whatever the size; only a complete, fsynced file is renamed to
 * its digest. A crash leaves at most a temp file (removed at the next start) or an unreferenced
 * blob (swept at the next start), never a half blob under a digest name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { formatBytes } from '../../shared/size.js';
import { fsyncDir } from '../../shared/durable-file.js';

const DIGEST = /^sha256:([0-9a-f]{64})$/;

/** write(2) may write less than asked (a filling disk): loop, so the file holds every hashed byte. */
async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

export interface StagedBlob {
  readonly digest: string;
  readonly size: number;
  /** Makes the blob visible under its digest (a no-op beyond cleanup if it already exists). */
  commit(): Promise<void>;
  discard(): Promise<void>;
}

export interface StageOptions {
  maxBytes: number;
  /** Sees every chunk after it is written; a rejection aborts the upload (archive checks use it). */
  onChunk?: (chunk: Uint8Array) => Promise<void>;
}

export class BlobStore {
  private constructor(private readonly dir: string) {}

  private get blobDir(): string {
    return join(this.dir, 'sha256');
  }

  private get tmpDir(): string {
    return join(this.dir, 'tmp');
  }

  static async open(dir: string): Promise<BlobStore> {
    const store = new BlobStore(dir);
    await mkdir(store.blobDir, { recursive: true, mode: 0o700 });
    // Temp files belong to uploads that died with the previous process.
    await rm(store.tmpDir, { recursive: true, force: true });
    await mkdir(store.tmpDir, { recursive: true, mode: 0o700 });
    return store;
  }

  path(digest: string): string {
    const m = DIGEST.exec(digest);
    if (!m) throw new EdgemlError(ErrorCodes.INTERNAL, `not a blob digest: ${digest}`);
    return join(this.blobDir, m[1]!);
  }

  async has(digest: string): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  openRead(digest: string): ReadStream {
    return createReadStream(this.path(digest));
  }

  async stage(source: AsyncIterable<Uint8Array>, options: StageOptions): Promise<StagedBlob> {
    const tmp = join(this.tmpDir, randomBytes(12).toString('hex'));
    const hash = createHash('sha256');
    const handle = await open(tmp, 'wx', 0o600);
    let size = 0;
    try {
      for await (const chunk of source) {
        size += chunk.byteLength;
        if (size > options.maxBytes) {
          throw new EdgemlError(ErrorCodes.HUB_PAYLOAD_TOO_LARGE, `upload is larger than the limit of ${formatBytes(options.maxBytes)}`, { httpStatus: 413 });
        }
        hash.update(chunk);
        await writeAll(handle, chunk);
        if (options.onChunk) await options.onChunk(chunk);
      }
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    const digest = `sha256:${hash.digest('hex')}`;
    const final = this.path(digest);
    return {
      digest,
      size,
      commit: async () => {
        if (await this.has(digest)) {
          await rm(tmp, { force: true });
          return;
        }
        await rename(tmp, final);
        await fsyncDir(this.blobDir);
      },
      discard: () => rm(tmp, { force: true }),
    };
  }

  async putBytes(bytes: Uint8Array): Promise<{ digest: string; size: number }> {
    const staged = await this.stage(
      (async function* () {
        yield bytes;
      })(),
      { maxBytes: Number.MAX_SAFE_INTEGER },
    );
    await staged.commit();
    return { digest: staged.digest, size: staged.size };
  }

  /**
   * Removes blobs nothing references. Run only before the hub accepts requests: an upload in flight
   * has a committed blob that its record does not reference yet.
   */
  async sweep(referenced: Set<string>): Promise<{ removed: number; bytes: number }> {
    let removed = 0;
    let bytes = 0;
    for (const name of await readdir(this.blobDir)) {
      if (referenced.has(`sha256:${name}`)) continue;
      const path = join(this.blobDir, name);
      bytes += (await stat(path)).size;
      await rm(path, { force: true });
      removed++;
    }
    return { removed, bytes };
  }
}
