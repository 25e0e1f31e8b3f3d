/** Errors of the telemetry archive, with stable codes (shared/errors.ts). */
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

export const TelemetryArchiveCodes = {
  /** A device id, service, model name or version that cannot be a file name (`/`, `..`, empty, …). */
  NAME_INVALID: ErrorCodes.HUB_TELEMETRY_NAME_INVALID,
  /** A record without a usable timestamp or kind, or a batch id that is not a short string. */
  RECORD_INVALID: ErrorCodes.HUB_TELEMETRY_RECORD_INVALID,
  /** A write failed and could not be rolled back, or the archive is closed: reopen it. */
  ARCHIVE_FAILED: ErrorCodes.HUB_TELEMETRY_ARCHIVE_FAILED,
} as const;

export type TelemetryArchiveCode = (typeof TelemetryArchiveCodes)[keyof typeof TelemetryArchiveCodes];

export class TelemetryArchiveError extends EdgemlError {
  constructor(code: TelemetryArchiveCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'TelemetryArchiveError';
  }
}
