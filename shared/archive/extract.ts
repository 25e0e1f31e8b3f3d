/**
 * Safe extraction. Every entry passes the same rules as an upload (rules.ts) before it touches the
 * disk, and links are created only after all files and directories are written, so no write can go
 * through a link and no ".." or absolute name reaches a syscall.
 */
import { link, mkdir, open, readdir, rm, symlink, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { EdgemlError, ErrorCodes } from '../errors.js';
import { parentSegments, parseEntryPath } from './paths.js';
import { TarReader, type ArchiveSink, type FileSink } from './reader.js';
import type { ArchiveEntry, ArchiveLimits } from './types.js';

/**
 * Extracts into `destDir`, which must not exist or be empty. An unusable `destDir` is the caller's
 * mistake, not the archive's, so it is CLI_INPUT_INVALID without an httpStatus. On any failure
 * whatever was extracted is removed: `destDir` is emptied, or removed if this call created it.
 */
export async function extractArchive(
  source: AsyncIterable<Uint8Array> | Readable,
  destDir: string,
  limits: ArchiveLimits,
): Promise<ArchiveEntry[]> {
  const created = await claimDestination(destDir);
  const writer = new DirectoryWriter(destDir);
  const reader = new TarReader(limits, writer);
  try {
    for await (const chunk of source as AsyncIterable<Uint8Array>) await reader.write(chunk);
    const entries = await reader.finish();
    await writer.links(entries);
    return entries;
  } catch (err) {
    reader.abort(err as Error);
    await reader.settled();
    // Best effort: the archive's error is the one the caller must act on, and rm with force only
    // fails on a directory someone else broke.
    await removeExtracted(destDir, created).catch(() => {});
    throw err;
  }
}

/** Returns the top directory this call created (to remove on failure), or null if `destDir` existed. */
async function claimDestination(destDir: string): Promise<string | null> {
  let created: string | undefined;
  try {
    created = await mkdir(destDir, { recursive: true, mode: 0o755 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw err;
    throw new EdgemlError(ErrorCodes.CLI_INPUT_INVALID, `cannot extract into ${JSON.stringify(destDir)}: it is not a directory`, { cause: err });
  }
  if (created !== undefined) return created;
  if ((await readdir(destDir)).length > 0) {
    throw new EdgemlError(ErrorCodes.CLI_INPUT_INVALID, `cannot extract into ${JSON.stringify(destDir)}: directory is not empty`);
  }
  return null;
}

async function removeExtracted(destDir: string, created: string | null): Promise<void> {
  if (created !== null) {
    await rm(created, { recursive: true, force: true });
    return;
  }
  // rm does not follow symlinks, so emptying cannot reach outside destDir.
  for (const name of await readdir(destDir)) await rm(join(destDir, name), { recursive: true, force: true });
}

class DirectoryWriter implements ArchiveSink {
  /** Directories known to exist; destDir starts empty and holds no links until the very end. */
  private readonly made = new Set<string>(['']);

  constructor(private readonly root: string) {}

  async directory(entry: ArchiveEntry): Promise<void> {
    await this.ensureDir(entry.path.split('/'));
  }

  async file(entry: ArchiveEntry): Promise<FileSink> {
    await this.ensureDir(parentSegments(entry.path));
    // 'wx' (O_CREAT|O_EXCL): never reuse or follow whatever might already be there.
    const handle = await open(join(this.root, entry.path), 'wx', entry.mode);
    try {
      await handle.chmod(entry.mode); // open's mode is filtered by the umask
    } catch (err) {
      await handle.close();
      throw err;
    }
    return {
      async write(chunk) {
        for (let offset = 0; offset < chunk.byteLength; ) offset += (await handle.write(chunk, offset)).bytesWritten;
      },
      close: () => handle.close(),
    };
  }

  /** Creates the links once every file and directory they could point into exists. */
  async links(entries: readonly ArchiveEntry[]): Promise<void> {
    for (const entry of entries) {
      if (entry.type !== 'symlink' && entry.type !== 'hardlink') continue;
      await this.ensureDir(parentSegments(entry.path));
      const at = join(this.root, entry.path);
      if (entry.type === 'symlink') {
        await symlink(entry.target!, at);
      } else {
        const target = parseEntryPath(entry.target!);
        if (!target.ok) throw new EdgemlError(ErrorCodes.INTERNAL, `hardlink ${JSON.stringify(entry.path)} passed validation with a bad target`);
        await link(join(this.root, ...target.segments), at);
      }
    }
  }

  private async ensureDir(segments: readonly string[]): Promise<void> {
    if (this.made.has(segments.join('/'))) return;
    let path = '';
    for (const segment of segments) {
      path = path === '' ? segment : `${path}/${segment}`;
      if (this.made.has(path)) continue;
      const abs = join(this.root, path);
      await mkdir(abs, { mode: 0o755 });
      await chmod(abs, 0o755);
      this.made.add(path);
    }
  }
}
