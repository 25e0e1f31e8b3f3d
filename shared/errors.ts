/**
 * One error class for the whole system. `code` is stable and relied on by scripts and tests;
 * messages may change. The hub maps codes to HTTP statuses in one place via `httpStatus`.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'EDGEML_E_CONFIG_INVALID',
  INTERNAL: 'EDGEML_E_INTERNAL',
  MESSAGE_INVALID: 'EDGEML_E_MESSAGE_INVALID',
  TOPIC_INVALID: 'EDGEML_E_TOPIC_INVALID',
  HUB_LISTEN_FAILED: 'HUB_E_LISTEN_FAILED',
  HUB_NOT_FOUND: 'HUB_E_NOT_FOUND',
  HUB_INVALID_REQUEST: 'HUB_E_INVALID_REQUEST',
  HUB_DEVICE_NOT_FOUND: 'HUB_E_DEVICE_NOT_FOUND',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface EdgemlErrorOptions {
  retryable?: boolean;
  httpStatus?: number;
  cause?: unknown;
  /** Structured details safe to show a user (never secrets). */
  details?: Record<string, unknown>;
}

export class EdgemlError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly httpStatus: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: EdgemlErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgemlError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.httpStatus = options.httpStatus;
    this.details = options.details;
  }
}

export function isEdgemlError(err: unknown, code?: ErrorCode): err is EdgemlError {
  return err instanceof EdgemlError && (code === undefined || err.code === code);
}
