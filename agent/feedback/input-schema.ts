/**
 * A service's input schema, for checking inline examples (`{"input": …, "label": …}`) before they are
 * accepted: the request body schema of `POST /score` in the container's own `/swagger.json` (both
 * runtimes write it from the app's schema.json, as OpenAPI 3.1, whose schemas are JSON Schema).
 * Fetched and compiled once per revision; a revision's schema does not change.
 */
import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { request } from 'undici';
import { describeAjvError } from '../../shared/schema.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const SWAGGER_TIMEOUT_MS = 10_000;

/** undefined when valid, else a message naming the first offending field (`input.features.3: must be number`). */
export type InputCheck = (input: unknown) => string | undefined;

/** The container's OpenAPI document, from a replica's port. */
export type FetchDocument = (port: number) => Promise<unknown>;

export const fetchSwagger: FetchDocument = async (port) => {
  const res = await request(`http://127.0.0.1:${port}/swagger.json`, { headersTimeout: SWAGGER_TIMEOUT_MS, bodyTimeout: SWAGGER_TIMEOUT_MS });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`/swagger.json answered ${res.statusCode}`);
  }
  return res.body.json();
};

/** Draft-07 unless the schema says `$schema` 2019-09 or 2020-12 (as the runtimes and the hub read schema.json). */
function ajvFor(schema: unknown): Ajv {
  const dialect = typeof schema === 'object' && schema !== null ? String((schema as { $schema?: unknown }).$schema ?? '') : '';
  const options = { strict: false, allErrors: false, verbose: true };
  const ajv = dialect.includes('2020-12') ? new Ajv2020(options) : dialect.includes('2019-09') ? new Ajv2019(options) : new Ajv(options);
  return addFormats(ajv as Ajv);
}

const asRecord = (v: unknown): Record<string, unknown> | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/** Follows a local `#/a/b` pointer in the document. */
function resolvePointer(doc: unknown, ref: string): unknown {
  let node = doc;
  for (const part of ref.replace(/^#\/?/, '').split('/').filter(Boolean)) node = asRecord(node)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return node;
}

/**
 * The check for the document's `/score` request body; one that accepts any JSON object when the
 * document has no such schema. Throws when the schema does not compile.
 */
export function inputCheck(doc: unknown): InputCheck {
  const body = asRecord(asRecord(asRecord(asRecord(asRecord(asRecord(asRecord(doc)?.paths)?.['/score'])?.post)?.requestBody)?.content)?.['application/json']);
  let schema = body?.schema;
  const ref = asRecord(schema)?.$ref;
  if (typeof ref === 'string' && ref.startsWith('#')) schema = resolvePointer(doc, ref);
  if (schema === undefined) return (input) => (asRecord(input) ? undefined : 'input: must be object');
  // The runtimes re-root the schema's own references at #/components/schemas/…: they resolve against the document's components.
  const root = asRecord(schema) ? { ...asRecord(schema), components: asRecord(doc)?.components } : schema;
  const validate: ValidateFunction = ajvFor(root).compile(root as AnySchema);
  return (input) => {
    if (validate(input)) return undefined;
    const first = validate.errors?.[0];
    return first ? describeAjvError({ ...first, instancePath: `/input${first.instancePath}` }) : 'input: is invalid';
  };
}

/** Checks per service and revision, each fetched and compiled once (a failed fetch is tried again next time). */
export class InputSchemas {
  readonly #checks = new Map<string, Promise<InputCheck>>();

  constructor(private readonly fetch: FetchDocument = fetchSwagger) {}

  /** Rejects when the document cannot be had or its schema does not compile. */
  check(service: string, revision: number, port: number): Promise<InputCheck> {
    const key = `${service}@${revision}`;
    let check = this.#checks.get(key);
    if (!check) {
      check = this.fetch(port).then(inputCheck);
      this.#checks.set(key, check);
      // Only the revisions served now are kept (a device serves a handful), and a failure is not kept at all.
      check.catch(() => this.#checks.delete(key));
      for (const k of this.#checks.keys()) if (k.startsWith(`${service}@`) && k !== key) this.#checks.delete(k);
    }
    return check;
  }
}
