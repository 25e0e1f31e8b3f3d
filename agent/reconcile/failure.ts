import { EdgemlError, type ErrorCode } from '../../shared/errors.js';

/** Reports carry the message, so it is cut to what the protocol allows. */
export const MAX_MESSAGE_CHARS = 3900;

/** A reconcile failure as reported: a stable code, a message the protocol can carry, the original as `cause`. */
export function failure(code: ErrorCode, message: string, cause?: unknown): EdgemlError {
  const cut = message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}…` : message;
  return new EdgemlError(code, cut, { cause });
}
