/**
 * The archive's entries as a tree of path segments. Parent pointers let link resolution walk ".."
 * in O(1), and insertion sees conflicts with earlier and later entries alike in O(depth).
 */
import type { ArchiveEntry } from './types.js';

export interface TreeNode {
  readonly parent: TreeNode | null;
  readonly children: Map<string, TreeNode>;
  /** Null for the root and for directories only implied by a deeper entry. */
  entry: ArchiveEntry | null;
}

export function createRoot(): TreeNode {
  return { parent: null, children: new Map(), entry: null };
}

export interface Insertion {
  /** Why the entry cannot go there, or null once it is in. */
  conflict: string | null;
  /** New nodes: the entry itself unless it was implied before, plus directories it implies. */
  created: number;
}

export function insertEntry(root: TreeNode, segments: readonly string[], entry: ArchiveEntry): Insertion {
  let node = root;
  let created = 0;
  for (let i = 0; i < segments.length; i++) {
    if (node.entry !== null && node.entry.type !== 'directory') {
      // Checked on the way down so a file or link written before its would-be children is caught too.
      const via = node.entry.type === 'symlink' ? ' (no writing through links)' : '';
      return { conflict: `parent ${JSON.stringify(node.entry.path)} is a ${node.entry.type}, not a directory${via}`, created };
    }
    const name = segments[i]!;
    let next = node.children.get(name);
    if (next === undefined) {
      next = { parent: node, children: new Map(), entry: null };
      node.children.set(name, next);
      created++;
    }
    node = next;
  }
  if (node.entry !== null) return { conflict: 'duplicate path', created };
  if (entry.type !== 'directory' && node.children.size > 0) {
    const via = entry.type === 'symlink' ? ' (no writing through links)' : '';
    return { conflict: `is a ${entry.type} but other entries are inside it${via}`, created };
  }
  node.entry = entry;
  return { conflict: null, created };
}

export function findNode(root: TreeNode, segments: readonly string[]): TreeNode | null {
  let node: TreeNode | undefined = root;
  for (const name of segments) {
    node = node.children.get(name);
    if (node === undefined) return null;
  }
  return node;
}
