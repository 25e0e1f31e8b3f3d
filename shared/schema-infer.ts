/**
 * Infers a scoring schema document `{input, output, sample}` from example values (`edgeml schema
 * infer`): JSON Schema draft-07 that accepts the sample and values shaped like it. Pure: no I/O.
 */
import { EdgemlError, ErrorCodes } from './errors.js';
import { tooDeepAt } from './json-depth.js';

export type JsonSchema = Record<string, unknown>;

export interface InferOptions {
  /**
   * Annotate for score.py: number tensors get `"x-edgeml-decode": "ndarray"`, arrays of flat
   * records `"x-edgeml-decode": "dataframe"` (the Python runtime decodes them before run()).
   */
  decode?: boolean;
}

/**
 * How deep an example may nest: each object level costs its schema two (`properties`, the key), so
 * the document inferred from a deeper one would pass the hub's 64 levels (MAX_SCHEMA_DEPTH); and
 * the inference recurses, so a much deeper one would overflow the stack.
 */
export const MAX_EXAMPLE_DEPTH = 31;

const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Shorter strings, or ones without a digit, `+`, `/` or `=`, are taken for text unless they decode to an image. */
const MIN_BASE64_TEXT = 32;

const MAGIC: Array<[string, (b: Buffer) => boolean]> = [
  ['image/png', (b) => b.length >= 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))],
  ['image/jpeg', (b) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['image/gif', (b) => b.subarray(0, 4).toString('latin1') === 'GIF8'],
  ['image/webp', (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP'],
];

/** The media type from the first bytes, when they are a known image format. */
export function imageMediaType(bytes: Buffer): string | undefined {
  return MAGIC.find(([, test]) => test(bytes))?.[0];
}

function stringSchema(value: string): JsonSchema {
  if (value.length >= 8 && value.length % 4 === 0 && BASE64.test(value)) {
    const media = imageMediaType(Buffer.from(value.slice(0, 24), 'base64'));
    if (media) return { type: 'string', contentEncoding: 'base64', contentMediaType: media };
    if (value.length >= MIN_BASE64_TEXT && /[0-9+/=]/.test(value)) return { type: 'string', contentEncoding: 'base64' };
  }
  return { type: 'string' };
}

const isNumberType = (s: JsonSchema) => s.type === 'number' || s.type === 'integer';

/** A number tensor: numbers, or arrays (of arrays…) of numbers. */
function isTensor(s: JsonSchema): boolean {
  if (isNumberType(s)) return true;
  return s.type === 'array' && typeof s.items === 'object' && s.items !== null && isTensor(s.items as JsonSchema);
}

function isFlatRecord(s: JsonSchema): boolean {
  return s.type === 'object' && Object.values((s.properties ?? {}) as Record<string, JsonSchema>).every((p) => ['number', 'integer', 'string', 'boolean'].includes(String(p.type)));
}

/** One schema for several values' schemas (an array's elements). */
function merge(schemas: JsonSchema[]): JsonSchema {
  const [first, ...rest] = schemas;
  if (!first) return {};
  if (rest.every((s) => JSON.stringify(s) === JSON.stringify(first))) return first;
  if (schemas.every(isNumberType)) return { type: 'number' };
  if (schemas.every((s) => s.type === 'string')) {
    const encoded = schemas.every((s) => s.contentEncoding === 'base64');
    const media = new Set(schemas.map((s) => s.contentMediaType));
    return { type: 'string', ...(encoded ? { contentEncoding: 'base64' } : {}), ...(encoded && media.size === 1 && first.contentMediaType ? { contentMediaType: first.contentMediaType } : {}) };
  }
  if (schemas.every((s) => s.type === 'array')) {
    const lengths = new Set(schemas.map((s) => s.minItems));
    const items = merge(schemas.map((s) => (s.items ?? {}) as JsonSchema));
    const fixed = lengths.size === 1 && first.minItems !== undefined && first.maxItems === first.minItems;
    return { type: 'array', items, ...(fixed ? { minItems: first.minItems, maxItems: first.minItems } : {}) };
  }
  if (schemas.every((s) => s.type === 'object')) {
    const keys = new Map<string, JsonSchema[]>();
    for (const s of schemas) for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, JsonSchema>)) keys.set(k, [...(keys.get(k) ?? []), v]);
    const required = [...keys.keys()].filter((k) => schemas.every((s) => (s.required as string[]).includes(k)));
    return { type: 'object', properties: Object.fromEntries([...keys].map(([k, v]) => [k, merge(v)])), required, additionalProperties: false };
  }
  const types = [...new Set(schemas.map((s) => s.type))];
  return types.every((t) => typeof t === 'string') && schemas.every((s) => Object.keys(s).length === 1) ? { type: types } : {};
}

function infer(value: unknown, opts: InferOptions): JsonSchema {
  if (value === null) return { type: 'null' };
  if (typeof value === 'boolean') return { type: 'boolean' };
  if (typeof value === 'number') return { type: Number.isInteger(value) ? 'integer' : 'number' };
  if (typeof value === 'string') return stringSchema(value);
  if (Array.isArray(value)) {
    const items = merge(value.map((v) => infer(v, { ...opts, decode: false })));
    const schema: JsonSchema = { type: 'array', ...(value.length ? { items } : {}) };
    // A tensor's shape is part of the model's contract; a list of records may be any length.
    if (value.length && isTensor(schema)) Object.assign(schema, { minItems: value.length, maxItems: value.length });
    if (opts.decode && value.length && isTensor(schema)) schema['x-edgeml-decode'] = 'ndarray';
    else if (opts.decode && value.length && isFlatRecord(items)) schema['x-edgeml-decode'] = 'dataframe';
    return schema;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return { type: 'object', properties: Object.fromEntries(entries.map(([k, v]) => [k, infer(v, opts)])), required: entries.map(([k]) => k), additionalProperties: false };
  }
  throw new TypeError(`cannot infer a schema for a ${typeof value}`);
}

/** Refuses (CLI_E_INPUT_INVALID) an example nested deeper than MAX_EXAMPLE_DEPTH, before any recursion. */
function checkDepth(value: unknown, what: string): void {
  if (tooDeepAt(value, MAX_EXAMPLE_DEPTH, what) !== null) {
    throw new EdgemlError(ErrorCodes.CLI_INPUT_INVALID, `${what} is nested more than ${MAX_EXAMPLE_DEPTH} levels deep: its schema would be deeper than the hub accepts`);
  }
}

/** The JSON Schema (draft-07) of one example value. */
export function inferSchema(value: unknown, opts: InferOptions = {}, what = 'the example'): JsonSchema {
  checkDepth(value, what);
  return { $schema: DRAFT_07, ...infer(value, opts) };
}

/** The schema document for an input sample and, when known, an output sample (else any output). */
export function inferScoringSchema(sample: unknown, outputSample?: unknown, opts: InferOptions = {}): { input: JsonSchema; output: JsonSchema; sample: unknown } {
  return { input: inferSchema(sample, opts, 'the sample'), output: outputSample === undefined ? {} : inferSchema(outputSample, {}, 'the output sample'), sample };
}
