/**
 * The CLI side: a directory as a deterministic tar (same content, same bytes, same sha256), checked
 * against the same rules the hub applies, so a directory the hub would refuse fails here first,
 * with a message naming the local path.
 */
import { once } from 'node:events';
import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack, type Header, type Pack } from 'tar-stream';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../errors.js';
import { sortByPath } from './paths.js';
import { EntryRules, normalizeMode } from './rules.js';
import type { ArchiveEntryType } from './types.js';

type TarHeader = Partial<Header> & { name: string };

interface LocalEntry {
  path: string;
  type: Exclude<ArchiveEntryType, 'hardlink'>;
  mode: number;
  linkname: string | null;
}

const EPOCH = new Date(0);
const UNLIMITED = { maxFiles: Number.POSITIVE_INFINITY, maxBytes: Number.POSITIVE_INFINITY };

/**
 * Entries sorted by path (bytewise), mtime 0, uid/gid 0, no uname/gname, normalized modes,
 * directories included. Nothing is read until the stream is; errors are emitted on it.
 */
export function packDirectory(dir: string): Readable {
  return Readable.from(tarChunks(dir), { objectMode: false });
}

async function* tarChunks(dir: string): AsyncGenerator<Buffer> {
  // Walk and validate everything first, so a bad directory fails before the first byte is sent.
  const entries = await collect(dir);
  const tar = pack();
  const writing = writeEntries(dir, entries, tar).then(
    () => tar.finalize(),
    (err: Error) => {
      tar.destroy(err);
      throw err;
    },
  );
  writing.catch(() => {}); // surfaced through the tar stream's own error below
  try {
    for await (const chunk of tar) yield chunk as Buffer;
    await writing;
  } finally {
    // The consumer stopped early: stop reading files too.
    if (!tar.destroyed) tar.destroy(null);
  }
}

async function collect(dir: string): Promise<LocalEntry[]> {
  const top = await stat(dir).catch(() => null);
  if (!top?.isDirectory()) throw new EdgemlError(ErrorCodes.CLI_INPUT_INVALID, `${JSON.stringify(dir)} is not a directory`);
  const entries: LocalEntry[] = [];
  const walk = async (relDir: string): Promise<void> => {
    for (const name of await readdir(join(dir, relDir))) {
      const path = relDir === '' ? name : `${relDir}/${name}`;
      const info = await lstat(join(dir, path));
      if (info.isDirectory()) {
        entries.push({ path, type: 'directory', mode: 0o755, linkname: null });
        await walk(path);
      } else if (info.isFile()) {
        entries.push({ path, type: 'file', mode: normalizeMode('file', info.mode), linkname: null });
      } else if (info.isSymbolicLink()) {
        entries.push({ path, type: 'symlink', mode: 0o777, linkname: await readlink(join(dir, path)) });
      } else {
        throw cannotPack(dir, path, `is a ${specialKind(info)}; only files, directories and symlinks can be packed`);
      }
    }
  };
  await walk('');
  const sorted = sortByPath(entries);
  const rules = new EntryRules(UNLIMITED);
  try {
    for (const e of sorted) rules.accept({ name: e.path, type: e.type, size: 0, mode: e.mode, linkname: e.linkname });
    rules.finish();
  } catch (err) {
    if (!isEdgemlError(err, ErrorCodes.ARCHIVE_INVALID)) throw err;
    const details = err.details as { entry: string; reason: string };
    throw cannotPack(dir, details.entry, details.reason, err);
  }
  return sorted;
}

function specialKind(info: { isSocket(): boolean; isFIFO(): boolean }): string {
  if (info.isSocket()) return 'socket';
  return info.isFIFO() ? 'FIFO' : 'device';
}

function cannotPack(dir: string, path: string, reason: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.ARCHIVE_INVALID, `cannot pack ${JSON.stringify(join(dir, path))}: ${reason}`, {
    httpStatus: 400,
    cause,
    details: { entry: path, reason },
  });
}

async function writeEntries(dir: string, entries: readonly LocalEntry[], tar: Pack): Promise<void> {
  for (const e of entries) {
    const header: TarHeader = { name: e.path, type: e.type, mode: e.mode, mtime: EPOCH, uid: 0, gid: 0, size: 0 };
    if (e.type === 'symlink') header.linkname = e.linkname!;
    if (e.type !== 'file') {
      await new Promise<void>((resolve, reject) => tar.entry(header, (err) => (err ? reject(err) : resolve())));
      continue;
    }
    // O_NOFOLLOW: the file must still be the regular file that was validated, not a link swapped in.
    const file = await open(join(dir, e.path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      if (!(await file.stat()).isFile()) throw cannotPack(dir, e.path, 'changed while packing');
      await writeFile(tar, header, file);
    } finally {
      await file.close();
    }
  }
}

async function writeFile(tar: Pack, header: TarHeader, file: FileHandle): Promise<void> {
  const info = await file.stat();
  header.size = info.size;
  let sink!: ReturnType<Pack['entry']>;
  const written = new Promise<void>((resolve, reject) => {
    sink = tar.entry(header, (err) => (err ? reject(err) : resolve()));
  });
  // A size mismatch (file changed while packing) reaches us through `written`; don't let it throw twice.
  sink.on('error', () => {});
  // The consumer may destroy the pack mid-file (the hub refused the upload): `written` then rejects
  // before it is awaited below, which must not count as an unhandled rejection.
  written.catch(() => {});
  if (info.size > 0) {
    for await (const chunk of file.createReadStream({ start: 0, end: info.size - 1, autoClose: false })) {
      if (!sink.write(chunk)) await Promise.race([once(sink, 'drain'), written]);
    }
  }
  sink.end(null);
  await written;
}
