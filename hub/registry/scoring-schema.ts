/**
 * Checks a manifest's schema document `{"input", "output", "sample"}` the way the scoring runtime
 * will use it, so a broken schema fails at `manifest create` instead of on a device.
 */
import { Ajv, type AnySchema } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { tooDeepAt } from '../../shared/json-depth.js';
import { describeAjvError } from '../../shared/schema.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface ScoringSchema {
  input: unknown;
  output: unknown;
  sample: unknown;
}

const PARTS = ['input', 'output', 'sample'] as const;

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_MANIFEST_INVALID, message, { httpStatus: 400 });
}

/**
 * Far deeper than any honest schema or sample. A deeper document overflows the stack of whatever
 * walks it recursively (structured clone into the checking worker, ajv, JSON.stringify when the
 * store is written), which would answer 500 or leave a store that can no longer be written.
 */
export const MAX_SCHEMA_DEPTH = 64;

export function checkSchemaDepth(doc: unknown): void {
  const at = tooDeepAt(doc, MAX_SCHEMA_DEPTH, 'schema');
  if (at !== null) throw invalid(`${at}: is nested more than ${MAX_SCHEMA_DEPTH} levels deep`);
}

/** Users write draft-07 (the default) or say `$schema` 2019-09 / 2020-12; each gets its validator. */
function validatorFor(schema: unknown): Ajv {
  const dialect = typeof schema === 'object' && schema !== null ? String((schema as { $schema?: unknown }).$schema ?? '') : '';
  const options = { strict: false, allErrors: false, verbose: true };
  const ajv = dialect.includes('2020-12') ? new Ajv2020(options) : dialect.includes('2019-09') ? new Ajv2019(options) : new Ajv(options);
  addFormats(ajv as Ajv);
  return ajv as Ajv;
}

/** `x-edgeml-decode`: how the runtimes hand a field to run() (images/README.md, "Decoded inputs"). */
export const DECODE_MODES = ['bytes', 'ndarray', 'dataframe', 'none'] as const;

/** The runtimes' own keywords, anywhere in the input schema; JSON Schema itself ignores them. */
function checkDecodeKeywords(node: unknown, path: string): void {
  if (Array.isArray(node)) {
    node.forEach((v, i) => checkDecodeKeywords(v, `${path}.${i}`));
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const record = node as Record<string, unknown>;
  const mode = record['x-edgeml-decode'];
  // An object there is a property of that name (its schema), not the keyword.
  if (mode !== undefined && typeof mode !== 'object' && !(DECODE_MODES as readonly unknown[]).includes(mode)) {
    throw invalid(`${path}.x-edgeml-decode: must be one of ${DECODE_MODES.map((m) => JSON.stringify(m)).join(', ')}`);
  }
  const dtype = record['x-edgeml-dtype'];
  if (dtype !== undefined && typeof dtype !== 'object' && (typeof dtype !== 'string' || !/^[A-Za-z0-9_<>|]{1,32}$/.test(dtype))) {
    throw invalid(`${path}.x-edgeml-dtype: must be a numpy dtype name such as "float32"`);
  }
  for (const [key, value] of Object.entries(record)) checkDecodeKeywords(value, `${path}.${key}`);
}

export function checkScoringSchema(doc: unknown): ScoringSchema {
  checkSchemaDepth(doc);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('schema: must be a JSON object {"input": …, "output": …, "sample": …}');
  for (const key of Object.keys(doc)) {
    if (!(PARTS as readonly string[]).includes(key)) throw invalid(`schema.${key}: is not a known part (expected input, output, sample)`);
  }
  const parts = doc as Partial<Record<(typeof PARTS)[number], unknown>>;
  for (const part of PARTS) {
    if (!(part in parts)) throw invalid(`schema.${part}: is required`);
  }
  const compiled: Record<string, ReturnType<Ajv['compile']>> = {};
  for (const part of ['input', 'output'] as const) {
    const schema = parts[part];
    if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) {
      throw invalid(`schema.${part}: must be a JSON Schema (an object)`);
    }
    try {
      compiled[part] = validatorFor(schema).compile(schema as AnySchema);
    } catch (err) {
      throw invalid(`schema.${part}: is not a valid JSON Schema: ${(err as Error).message}`);
    }
  }
  checkDecodeKeywords(parts.input, 'schema.input');
  const validateInput = compiled.input!;
  if (!validateInput(parts.sample)) {
    const first = validateInput.errors?.[0];
    // Rooted at `sample` so the message reads `sample.pixels: must be array`.
    throw invalid(`schema.sample does not match schema.input: ${first ? describeAjvError({ ...first, instancePath: `/sample${first.instancePath}` }) : 'is invalid'}`);
  }
  return { input: parts.input, output: parts.output, sample: parts.sample };
}
