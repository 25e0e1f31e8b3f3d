/**
 * The `{code, message}` a record keeps of the error that ended it (a build, a trainer image, a
 * model update): an EdgemlError keeps its stable code, anything else is reported as internal.
 */
import { EdgemlError, ErrorCodes } from '../shared/errors.js';

export interface ErrorView {
  code: string;
  message: string;
}

export function errorOf(err: unknown): ErrorView {
  if (err instanceof EdgemlError) return { code: err.code, message: err.message };
  return { code: ErrorCodes.INTERNAL, message: (err as Error).message ?? String(err) };
}
