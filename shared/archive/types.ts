/** The public data shapes of the directory-upload archive format (see index.ts). */
export interface ArchiveLimits {
  /** Entries of any type; one more is ARCHIVE_TOO_LARGE. */
  maxFiles: number;
  /** Sum of the (unpacked) file sizes; one byte more is ARCHIVE_TOO_LARGE. */
  maxBytes: number;
}

export type ArchiveEntryType = 'file' | 'directory' | 'symlink' | 'hardlink';

export interface ArchiveEntry {
  /** Normalized POSIX relative path: no leading "./", no trailing "/", no empty or "." segments. */
  path: string;
  type: ArchiveEntryType;
  /** Bytes for files, 0 otherwise. */
  size: number;
  /** "sha256:<hex>" of the content for files, null otherwise. */
  digest: string | null;
  /** 0o644 or 0o755 for files, 0o755 for directories, 0o777 for links. */
  mode: number;
  /** The link target as written in the archive for symlinks and hardlinks, else null. */
  target: string | null;
}

/** The header fields the rules look at; tar-stream's `Headers` fits, and so do the packer's own. */
export interface TarHeader {
  name: string;
  type?: string | null | undefined;
  size?: number | undefined;
  mode?: number | undefined;
  linkname?: string | null | undefined;
}
