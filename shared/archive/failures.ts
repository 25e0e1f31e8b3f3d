/**
 * The ways an archive is refused. Every message names the entry, and `details` carries the
 * entry and the bare reason so the packer can restate them in CLI terms without parsing messages.
 */
import { EdgemlError, ErrorCodes } from '../errors.js';

// A hostile archive can carry a 4 MiB pax path; an error message must not.
const MAX_QUOTED = 200;

export function quote(text: string): string {
  const quoted = JSON.stringify(text);
  return quoted.length <= MAX_QUOTED ? quoted : `${quoted.slice(0, MAX_QUOTED)}…"`;
}

export function invalidEntry(entry: string, reason: string): EdgemlError {
  return new EdgemlError(ErrorCodes.ARCHIVE_INVALID, `archive entry ${quote(entry)}: ${reason}`, {
    httpStatus: 400,
    details: { entry: entry.slice(0, MAX_QUOTED), reason },
  });
}

export function entryTooLarge(entry: string, reason: string): EdgemlError {
  return new EdgemlError(ErrorCodes.ARCHIVE_TOO_LARGE, `archive entry ${quote(entry)}: ${reason}`, {
    httpStatus: 413,
    details: { entry: entry.slice(0, MAX_QUOTED), reason },
  });
}

/** No entry to name: `details.entry` is the archive's root, so the packer names the directory. */
export function noFiles(): EdgemlError {
  const reason = 'has no files: a model directory needs at least one';
  return new EdgemlError(ErrorCodes.ARCHIVE_INVALID, `archive ${reason}`, { httpStatus: 400, details: { entry: '', reason } });
}

export function notATar(cause: Error): EdgemlError {
  return new EdgemlError(ErrorCodes.ARCHIVE_INVALID, `archive is truncated or not a tar stream: ${cause.message}`, {
    httpStatus: 400,
    cause,
  });
}
