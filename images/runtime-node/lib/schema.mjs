// The app's schema.json: {"input": JSON Schema, "output": JSON Schema, "sample": …}. Validation
// messages name the field the way the hub does (hub/registry/scoring-schema.ts, shared/schema.ts):
// `features.3: must be number`, `features: is required`, `extra: is not a known field`.
import { readFileSync } from 'node:fs';
import AjvModule from 'ajv';
import Ajv2019Module from 'ajv/dist/2019.js';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// Ajv and ajv-formats are CommonJS: the default import is module.exports, which is also `.default`.
const Ajv = AjvModule.default ?? AjvModule;
const Ajv2019 = Ajv2019Module.default ?? Ajv2019Module;
const Ajv2020 = Ajv2020Module.default ?? Ajv2020Module;
const addFormats = addFormatsModule.default ?? addFormatsModule;

const PARTS = ['input', 'output', 'sample'];

/** Reads and checks schema.json; throws an Error whose message names the file and the problem. */
export function readScoringSchema(file) {
  let doc;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${file}: ${err.message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new Error(`${file}: must be a JSON object {"input": …, "output": …, "sample": …}`);
  }
  for (const part of PARTS) {
    if (!(part in doc)) throw new Error(`${file}: "${part}" is required`);
  }
  return { input: doc.input, output: doc.output, sample: doc.sample };
}

/** Draft-07 unless the schema says `$schema` 2019-09 or 2020-12. */
function ajvFor(schema) {
  const dialect = typeof schema === 'object' && schema !== null ? String(schema.$schema ?? '') : '';
  const options = { strict: false, allErrors: false, verbose: true };
  const ajv = dialect.includes('2020-12') ? new Ajv2020(options) : dialect.includes('2019-09') ? new Ajv2019(options) : new Ajv(options);
  addFormats(ajv);
  return ajv;
}

/**
 * Compiles one part; returns `check(value)` giving undefined when valid, else a message naming the
 * first offending field. Throws if the schema itself is broken, naming `part`.
 */
export function compileCheck(schema, part) {
  let validate;
  try {
    validate = ajvFor(schema).compile(schema);
  } catch (err) {
    throw new Error(`schema.json "${part}" is not a valid JSON Schema: ${err.message}`);
  }
  return (value) => {
    if (validate(value)) return undefined;
    const first = validate.errors && validate.errors[0];
    return first ? describeAjvError(first) : `${part}: is invalid`;
  };
}

/** `/features/3` → `features.3`; the root is `(root)`. */
function fieldName(instancePath, extra) {
  const parts = instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.length ? parts.join('.') : '(root)';
}

function describeAjvError(error) {
  const params = error.params || {};
  switch (error.keyword) {
    case 'required':
      return `${fieldName(error.instancePath, String(params.missingProperty))}: is required`;
    case 'additionalProperties':
      return `${fieldName(error.instancePath, String(params.additionalProperty))}: is not a known field`;
    case 'unevaluatedProperties':
      return `${fieldName(error.instancePath, String(params.unevaluatedProperty))}: is not a known field`;
    case 'const':
      return `${fieldName(error.instancePath)}: must be ${JSON.stringify(params.allowedValue)}`;
    case 'enum':
      return `${fieldName(error.instancePath)}: must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern': {
      const examples = error.parentSchema && error.parentSchema.examples;
      if (Array.isArray(examples) && examples.length) {
        return `${fieldName(error.instancePath)}: must look like ${examples.map((e) => JSON.stringify(e)).join(' or ')}`;
      }
      return `${fieldName(error.instancePath)}: ${error.message}`;
    }
    default:
      return `${fieldName(error.instancePath)}: ${error.message || 'is invalid'}`;
  }
}
