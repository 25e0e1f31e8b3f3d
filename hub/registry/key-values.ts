/** `KEY=VALUE` lists from query strings and flags, as records; a repeated key is an error. */
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });
}

export function keyValues(field: string, items: readonly string[] | undefined): Record<string, string> {
  const out = new Map<string, string>();
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    const key = item.slice(0, eq);
    if (eq <= 0) throw invalid(`${field}: ${JSON.stringify(item)} is not KEY=VALUE`);
    if (out.has(key)) throw invalid(`${field}: key ${JSON.stringify(key)} is given twice`);
    out.set(key, item.slice(eq + 1));
  }
  return Object.fromEntries(out);
}

export function numericKeyValues(field: string, items: readonly string[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, text] of Object.entries(keyValues(field, items))) {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value)) throw invalid(`${field}: ${key}=${text}: the value must be a number`);
    out[key] = value;
  }
  return out;
}
