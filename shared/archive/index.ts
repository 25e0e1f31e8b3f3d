/**
 * The directory-upload archive format: the CLI packs a model directory (pack.ts), the hub validates
 * the upload as it streams (inspect.ts) and later extracts it (extract.ts). One set of rules
 * (rules.ts with paths.ts, tree.ts and links.ts) decides what is acceptable for all three.
 *
 * Beyond the per-entry rules, two choices callers may notice:
 * - `maxFiles` counts directories implied by deeper paths as well as explicit entries, since each
 *   becomes an inode; packDirectory always writes directories explicitly, so for its output the
 *   count is exactly the number of entries.
 * - A stream that stops between two entries, without the end-of-archive zero block, is refused as
 *   truncated (tar-stream alone would accept it as a shorter archive).
 */
export type { ArchiveEntry, ArchiveEntryType, ArchiveLimits } from './types.js';
export { packDirectory } from './pack.js';
export { ArchiveInspector } from './inspect.js';
export { extractArchive } from './extract.js';
