import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });
}

/** `NAME:VERSION` or `NAME@ALIAS` (MODEL_REF_PATTERN): the name and how to pick the version. */
export function parseModelRef(ref: string): { name: string; selector: { version: number } | { alias: string } } {
  const at = ref.indexOf('@');
  if (at > 0) return { name: ref.slice(0, at), selector: { alias: ref.slice(at + 1) } };
  if (ref.indexOf(':') <= 0) throw invalid(`model ${JSON.stringify(ref)}: expected NAME:VERSION or NAME@ALIAS`);
  const { name, version } = parsePinnedRef(ref);
  return { name, selector: { version } };
}

/** `NAME` or `NAME:VERSION` (a trainer, a dataset; names have no `:`): a name alone picks the latest version. */
export function parseVersionRef(ref: string): { name: string; selector: { version: number } | { latest: true } } {
  const colon = ref.indexOf(':');
  return colon < 0 ? { name: ref, selector: { latest: true } } : { name: ref.slice(0, colon), selector: { version: Number(ref.slice(colon + 1)) } };
}

/** `NAME:VERSION` exactly (what a schema pattern already required, such as a job's datasets). */
export function parsePinnedRef(ref: string): { name: string; version: number } {
  const { name, selector } = parseVersionRef(ref);
  if (!('version' in selector)) throw invalid(`${JSON.stringify(ref)}: expected NAME:VERSION`);
  return { name, version: selector.version };
}
