/**
 * The one schema language: TypeBox builds JSON Schema (which also feeds OpenAPI), Ajv checks it.
 * `compileChecker` turns a schema into a function that returns either the typed value or an error
 * message naming the offending field.
 */
import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Type, type Static, type TLiteral, type TObject, type TSchema, type TUnion, type TUnsafe } from '@sinclair/typebox';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export type CheckResult<T> = { ok: true; value: T } | { ok: false; error: string };
export type Checker<T> = (value: unknown) => CheckResult<T>;

/**
 * A string that is one of `values`, as a JSON Schema `enum`. (A TypeBox union of literals becomes
 * `anyOf`, whose first failing branch makes Ajv report "must be <first value>".)
 */
export function stringEnum<const T extends readonly string[]>(values: T, options: object = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/**
 * A union of object shapes told apart by one literal property, as `oneOf` + `discriminator`, so
 * validation errors come from the branch the message claims to be (and OpenAPI shows the choice).
 */
export function taggedUnion<const K extends string, V extends TObject[]>(tag: K, variants: [...V]): TUnsafe<Static<TUnion<V>>> {
  for (const v of variants) {
    if (!(v.properties[tag] as TLiteral | undefined)?.const) throw new Error(`taggedUnion: every variant needs a literal "${tag}"`);
  }
  return Type.Unsafe<Static<TUnion<V>>>({ type: 'object', oneOf: variants, discriminator: { propertyName: tag } });
}

export function makeAjv(options: Options): Ajv {
  // verbose: errors carry their schema, so a pattern failure can quote the schema's `examples`.
  const ajv = new Ajv({ allErrors: false, strict: true, verbose: true, discriminator: true, ...options });
  addFormats(ajv);
  // TypeBox attaches Kind/Modifier symbols, not keywords; these are its documented extras.
  ajv.addKeyword('kind').addKeyword('modifier');
  return ajv;
}

// compileChecker takes only the project's own TypeBox schemas, which test/unit/schema-meta.test.ts
// holds to the meta-schema: checking each against it at run time cost the CLI a sixth of its start-up.
const strictAjv = makeAjv({ useDefaults: true, validateSchema: false });
// Env vars and flags arrive as strings: config checking coerces "8080" to 8080.
const coercingAjv = makeAjv({ useDefaults: true, coerceTypes: true, validateSchema: false });

/** `/facts/cpus` → `facts.cpus`; the root becomes `(root)`. */
function fieldName(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').filter(Boolean);
  if (extra) parts.push(extra);
  return parts.length ? parts.join('.') : '(root)';
}

export function describeAjvError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${fieldName(error.instancePath, String(params.missingProperty))}: is required`;
    case 'additionalProperties':
      return `${fieldName(error.instancePath, String(params.additionalProperty))}: is not a known field`;
    case 'const':
      return `${fieldName(error.instancePath)}: must be ${JSON.stringify(params.allowedValue)}`;
    case 'pattern': {
      const examples = (error.parentSchema as { examples?: unknown[] } | undefined)?.examples;
      if (examples?.length) return `${fieldName(error.instancePath)}: must look like ${examples.map((e) => JSON.stringify(e)).join(' or ')}`;
      return `${fieldName(error.instancePath)}: ${error.message ?? 'is invalid'}`;
    }
    case 'discriminator': {
      const variants = ((error.parentSchema as { oneOf?: TObject[] } | undefined)?.oneOf ?? []).map(
        (v) => (v.properties[String(params.tag)] as TLiteral).const,
      );
      return `${fieldName(error.instancePath, String(params.tag))}: must be one of ${variants.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    case 'enum':
      return `${fieldName(error.instancePath)}: must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${fieldName(error.instancePath)}: ${error.message ?? 'is invalid'}`;
  }
}

export function compileChecker<S extends TSchema>(schema: S, opts: { coerce?: boolean } = {}): Checker<Static<S>> {
  const validate = (opts.coerce ? coercingAjv : strictAjv).compile(schema);
  return (value: unknown) => {
    if (validate(value)) return { ok: true, value: value as Static<S> };
    const first = validate.errors?.[0];
    return { ok: false, error: first ? describeAjvError(first) : 'is invalid' };
  };
}
