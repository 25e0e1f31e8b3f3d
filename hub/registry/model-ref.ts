import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

/** `NAME:VERSION` or `NAME@ALIAS` (MODEL_REF_PATTERN): the name and how to pick the version. */
export function parseModelRef(ref: string): { name: string; selector: { version: number } | { alias: string } } {
  const at = ref.indexOf('@');
  if (at > 0) return { name: ref.slice(0, at), selector: { alias: ref.slice(at + 1) } };
  const colon = ref.indexOf(':');
  if (colon <= 0) throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `model ${JSON.stringify(ref)}: expected NAME:VERSION or NAME@ALIAS`, { httpStatus: 400 });
  return { name: ref.slice(0, colon), selector: { version: Number(ref.slice(colon + 1)) } };
}
