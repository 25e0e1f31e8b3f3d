/**
 * Lexical rules for the names inside an archive. Pure string work: whether a name is safe on disk
 * also depends on the other entries (links), which is links.ts's job.
 */
export const MAX_PATH_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 255;

export type PathCheck = { ok: true; segments: string[] } | { ok: false; reason: string };

/** Shared by entry names, hardlink targets and symlink targets: forms that mean something else on some OS. */
function foreignFormProblem(name: string, what: string): string | null {
  if (name.includes('\0')) return `${what} contains a NUL byte`;
  // A backslash is a plain character on POSIX but a separator on Windows, where the CLI also runs.
  if (name.includes('\\')) return `${what} contains a backslash (Windows path)`;
  if (/^[A-Za-z]:/.test(name)) return `${what} starts with a Windows drive letter`;
  if (name.startsWith('/')) return `${what} is absolute`;
  return null;
}

/**
 * Splits an entry name into normalized segments ("./a//b/" → ["a", "b"]). An empty list is the
 * root itself. Any ".." is refused, even one that would stay inside: no legitimate packer writes them.
 */
export function parseEntryPath(name: string, what = 'path'): PathCheck {
  const foreign = foreignFormProblem(name, what);
  if (foreign !== null) return { ok: false, reason: foreign };
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) {
    return { ok: false, reason: escapesLexically(segments) ? `${what} leaves the model directory` : `${what} contains a ".." segment` };
  }
  if (Buffer.byteLength(segments.join('/')) > MAX_PATH_BYTES) return { ok: false, reason: `${what} is longer than ${MAX_PATH_BYTES} bytes` };
  if (segments.some((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES)) {
    return { ok: false, reason: `${what} has a segment longer than ${MAX_SEGMENT_BYTES} bytes` };
  }
  return { ok: true, segments };
}

function escapesLexically(segments: string[]): boolean {
  let depth = 0;
  for (const s of segments) {
    depth += s === '..' ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}

/** Syntax only; where the target leads among the archive's other links is checked at the end. */
export function symlinkTargetProblem(target: string): string | null {
  if (target === '') return 'symlink has an empty target';
  const foreign = foreignFormProblem(target, `symlink target ${JSON.stringify(target)}`);
  if (foreign !== null) return foreign;
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) return `symlink target is longer than ${MAX_PATH_BYTES} bytes`;
  return null;
}

/**
 * Sorts by the UTF-8 bytes of `path`, which is what "sorted by path" means across languages and
 * tools; JavaScript's own string order (UTF-16 code units) disagrees above U+FFFF.
 */
export function sortByPath<T extends { path: string }>(items: T[]): T[] {
  const keyed = items.map((item) => ({ item, key: Buffer.from(item.path) }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.item);
}

export function parentSegments(path: string): string[] {
  const segments = path.split('/');
  segments.pop();
  return segments;
}
