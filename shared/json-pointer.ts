/**
 * JSON pointers (RFC 6901): where in a model's answer the value compared with a label is. Shared so
 * the API checks a pointer when a request names one, and the hub reads answers with the same rules.
 */
import { EdgemlError, ErrorCodes } from './errors.js';

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });
}

/** The reference tokens of a pointer, unescaped (`~1` is `/`, `~0` is `~`, in that order). */
export function pointerTokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw invalid(`${JSON.stringify(pointer)} is not a JSON pointer: it must be empty or start with /`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~[^01]|~$/.test(token)) throw invalid(`${JSON.stringify(pointer)} is not a JSON pointer: ~ must be followed by 0 or 1`);
      return token.replaceAll('~1', '/').replaceAll('~0', '~');
    });
}

/** What a schema can check of a pointer: empty (the whole document) or `/`-prefixed; `pointerProblem` checks the escapes. */
export const JSON_POINTER_PATTERN = '^(?:/.*)?$';
export const MAX_JSON_POINTER_LENGTH = 512;

/** Why `pointer` is not an RFC 6901 JSON pointer, or null. */
export function pointerProblem(pointer: string): string | null {
  try {
    pointerTokens(pointer);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** An array index: `0` or digits without a leading zero (RFC 6901 §4). */
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

/** The value `pointer` names in `document`; undefined when the path does not exist. */
export function valueAt(document: unknown, pointer: string): unknown {
  let at: unknown = document;
  for (const token of pointerTokens(pointer)) {
    if (Array.isArray(at)) {
      if (!ARRAY_INDEX.test(token)) return undefined;
      at = at[Number(token)];
    } else if (typeof at === 'object' && at !== null && Object.hasOwn(at, token)) {
      at = (at as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
  }
  return at;
}
