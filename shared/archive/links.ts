/**
 * Where the archive's links lead, judged over the complete entry set (a target may name an entry
 * that comes later). Symlinks are resolved the way the kernel would after extraction, component by
 * component and through the archive's other symlinks, except that every ".." must stay inside the
 * root, and names the archive does not contain are followed lexically.
 */
import { invalidEntry } from './failures.js';
import { parseEntryPath } from './paths.js';
import { findNode, type TreeNode } from './tree.js';
import type { ArchiveEntry } from './types.js';

/** Linux's MAXSYMLINKS: a deeper chain would not resolve after extraction either. */
export const MAX_SYMLINK_DEPTH = 40;

/**
 * Inside: the deepest existing node reached plus how many further components do not exist in the
 * archive (only ".." can walk back over those, so their names do not matter).
 */
type Resolution =
  | { kind: 'inside'; node: TreeNode; missing: number }
  | { kind: 'escape'; via: string }
  | { kind: 'loop' };

class SymlinkResolver {
  // Memoized so that n links each naming the previous one cost O(n), not O(n²) re-expansions.
  private readonly resolved = new Map<TreeNode, Resolution>();
  private readonly resolving = new Set<TreeNode>();

  resolve(link: TreeNode, depth = 0): Resolution {
    const known = this.resolved.get(link);
    if (known !== undefined) return known;
    if (depth > MAX_SYMLINK_DEPTH || this.resolving.has(link)) return { kind: 'loop' };
    this.resolving.add(link);
    const entry = link.entry!;
    const result = this.walk(link.parent!, entry.target!, entry.path, depth);
    this.resolving.delete(link);
    // A loop verdict depends on how deep we came from, and it fails the archive anyway.
    if (result.kind !== 'loop') this.resolved.set(link, result);
    return result;
  }

  private walk(from: TreeNode, target: string, linkPath: string, depth: number): Resolution {
    let node = from;
    let missing = 0;
    for (const name of target.split('/')) {
      if (name === '' || name === '.') continue;
      if (name === '..') {
        if (missing > 0) missing--;
        else if (node.parent === null) return { kind: 'escape', via: linkPath };
        else node = node.parent;
        continue;
      }
      if (missing > 0) {
        missing++;
        continue;
      }
      const next = node.children.get(name);
      if (next === undefined) {
        missing = 1;
      } else if (next.entry?.type === 'symlink') {
        const through = this.resolve(next, depth + 1);
        if (through.kind !== 'inside') return through;
        ({ node, missing } = through);
      } else {
        node = next;
      }
    }
    return { kind: 'inside', node, missing };
  }
}

/** Throws ARCHIVE_INVALID for the first link (in `entries` order) that escapes or dangles illegally. */
export function checkLinks(root: TreeNode, entries: readonly ArchiveEntry[]): void {
  const resolver = new SymlinkResolver();
  for (const entry of entries) {
    if (entry.type === 'symlink') {
      const result = resolver.resolve(findNode(root, entry.path.split('/'))!);
      const target = JSON.stringify(entry.target);
      if (result.kind === 'loop') {
        throw invalidEntry(entry.path, `symlink target ${target} needs more than ${MAX_SYMLINK_DEPTH} levels of symlinks (or loops)`);
      }
      if (result.kind === 'escape') {
        const via = result.via === entry.path ? '' : ` through symlink ${JSON.stringify(result.via)}`;
        throw invalidEntry(entry.path, `symlink target ${target} leaves the model directory${via}`);
      }
    } else if (entry.type === 'hardlink') {
      // Syntax was checked on arrival; only existence needed the full set.
      const parsed = parseEntryPath(entry.target!, 'hardlink target');
      const node = parsed.ok ? findNode(root, parsed.segments) : null;
      if (node?.entry?.type !== 'file') {
        throw invalidEntry(entry.path, `hardlink target ${JSON.stringify(entry.target)} is not a regular file in the archive`);
      }
    }
  }
}
