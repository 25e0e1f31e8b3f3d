/**
 * The one set of rules every archive passes, whoever reads it: the hub's upload inspector, the
 * extractor, and the packer checking its own output before sending it. Headers go in as they
 * arrive (so limits and bad names fail early); `finish()` adds the checks that need every entry.
 */
import type { EdgemlError } from '../errors.js';
import { checkLinks } from './links.js';
import { entryTooLarge, invalidEntry, noFiles } from './failures.js';
import { parseEntryPath, sortByPath, symlinkTargetProblem } from './paths.js';
import { createRoot, insertEntry } from './tree.js';
import type { ArchiveEntry, ArchiveEntryType, ArchiveLimits, TarHeader } from './types.js';

const TYPES: Readonly<Record<string, ArchiveEntryType>> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'directory',
  symlink: 'symlink',
  link: 'hardlink',
};

export function normalizeMode(type: ArchiveEntryType, mode: number): number {
  if (type === 'file') return mode & 0o111 ? 0o755 : 0o644;
  return type === 'directory' ? 0o755 : 0o777;
}

export class EntryRules {
  private readonly root = createRoot();
  private readonly entries: ArchiveEntry[] = [];
  private bytes = 0;
  /** Explicit entries plus directories only implied by deeper paths: each becomes an inode on disk. */
  private nodes = 0;

  constructor(private readonly limits: ArchiveLimits) {}

  /**
   * Validates one header and records it. Returns the entry (a file's `digest` is for the caller to
   * fill in once it has read the content), or null for the archive's own root directory ("./").
   */
  accept(header: TarHeader): ArchiveEntry | null {
    const name = header.name;
    // tar-stream reports types it does not know (GNU sparse, dumpdir, …) as null.
    const type = TYPES[header.type ?? ''];
    if (type === undefined) throw invalidEntry(name, `unsupported entry type ${JSON.stringify(header.type ?? 'unknown')}`);
    const parsed = parseEntryPath(name);
    if (!parsed.ok) throw invalidEntry(name, parsed.reason);
    if (parsed.segments.length === 0) {
      if (type === 'directory') return null;
      throw invalidEntry(name, 'empty path');
    }
    const path = parsed.segments.join('/');
    const size = header.size ?? 0;
    if (type !== 'file' && size !== 0) throw invalidEntry(name, `a ${type} entry cannot carry data (size ${size})`);

    this.bytes += size;
    if (this.bytes > this.limits.maxBytes) throw entryTooLarge(name, `archive files add up to more than ${this.limits.maxBytes} bytes`);

    const target = type === 'symlink' || type === 'hardlink' ? (header.linkname ?? '') : null;
    if (type === 'symlink') {
      const problem = symlinkTargetProblem(target!);
      if (problem !== null) throw invalidEntry(name, problem);
    } else if (type === 'hardlink') {
      const linked = parseEntryPath(target!, `hardlink target ${JSON.stringify(target)}`);
      if (!linked.ok) throw invalidEntry(name, linked.reason);
      if (linked.segments.length === 0) throw invalidEntry(name, 'hardlink target is the model directory itself');
    }

    const entry: ArchiveEntry = { path, type, size, digest: null, mode: normalizeMode(type, header.mode ?? 0), target };
    const { conflict, created } = insertEntry(this.root, parsed.segments, entry);
    if (conflict !== null) throw invalidEntry(name, conflict);
    // Implied directories count too, or entries 2,048 levels deep would each cost 2,048 tree nodes
    // (and directories) against a limit meant to bound exactly that.
    this.nodes += created;
    if (this.nodes > this.limits.maxFiles) throw this.tooManyEntries(name);
    this.entries.push(entry);
    return entry;
  }

  private tooManyEntries(name: string): EdgemlError {
    return entryTooLarge(name, `archive has more than ${this.limits.maxFiles} entries (counting implied parent directories)`);
  }

  /** All entries sorted by path, once the links among them have been checked. */
  finish(): ArchiveEntry[] {
    const sorted = sortByPath(this.entries);
    checkLinks(this.root, sorted);
    // After the links, whose problems name an entry; links stay inside, so no file means no model.
    if (!sorted.some((e) => e.type === 'file')) throw noFiles();
    return sorted;
  }
}
