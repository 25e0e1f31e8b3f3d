/**
 * How the route schemas become a valid OpenAPI 3.0 document: named component schemas (so generated
 * clients get types, not anonymous shapes), the error answers every route can give, each route's
 * security, and JSON Schema keywords 3.0 spells differently.
 */
import type { FastifyDynamicSwaggerOptions, SwaggerTransformObject } from '@fastify/swagger';
import { ErrorBody } from '../../shared/api/common.js';
import { SECURITY_SCHEME } from './auth.js';
import { schemaKey, schemaNames, type SchemaNames } from './openapi-names.js';

type Json = Record<string, unknown>;
const COMPONENTS = '#/components/schemas/';

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A copy of `schema` in which every part that is a named shared/api schema carries `title: NAME`
 * (the marker `hoistComponents` turns into a `$ref`). `top` stays untitled: querystring and path
 * objects become parameter lists, not components.
 */
function titled(schema: unknown, names: Map<string, string>, top = false): unknown {
  if (Array.isArray(schema)) return schema.map((s) => titled(s, names));
  if (!isObject(schema)) return schema;
  const copy: Json = {};
  for (const [k, v] of Object.entries(schema)) copy[k] = titled(v, names);
  const name = top ? undefined : names.get(schemaKey(schema));
  return name ? { title: name, ...copy } : copy;
}

/** The error answers a route can give whatever its handler does. */
function frameworkErrors(schema: Json, scoped: boolean, hasBody: boolean): Json {
  const errors: Json = {};
  if (schema.params || schema.querystring || schema.body || schema.headers) errors[400] = ErrorBody;
  if (scoped) Object.assign(errors, { 401: ErrorBody, 403: ErrorBody });
  if (hasBody) errors[413] = ErrorBody;
  return errors;
}

/** What a use of a named schema may add to it (fastify-swagger moves a body's examples into the media type). */
const USE_KEYS = ['nullable', 'description', 'example'];

/**
 * Moves titled schemas to components.schemas (nested ones first) and puts a `$ref` in their place.
 * What a use adds to a named schema (`nullable` from `Type.Union([X, Type.Null()])`, its own
 * description) stays at the use, beside the reference: `{nullable, description, allOf: [{$ref}]}`.
 */
function hoistComponents(node: unknown, components: Json, annotations: SchemaNames['annotations']): unknown {
  if (Array.isArray(node)) return node.map((n) => hoistComponents(n, components, annotations));
  if (!isObject(node)) return node;
  const copy: Json = {};
  for (const [k, v] of Object.entries(node)) copy[k] = hoistComponents(v, components, annotations);
  const name = node.title;
  const own = typeof name === 'string' ? annotations.get(name) : undefined;
  if (typeof name !== 'string' || !own) return copy;
  const component: Json = {};
  const use: Json = {};
  for (const [k, v] of Object.entries(copy)) {
    if (!USE_KEYS.includes(k)) component[k] = v;
    else if (schemaKey(v) !== schemaKey(own[k as keyof typeof own])) use[k] = v;
  }
  Object.assign(component, own);
  const known = components[name];
  if (known !== undefined && schemaKey(known) !== schemaKey(component)) {
    throw new Error(`OpenAPI: two different schemas are both named ${name}: ${schemaKey(known)} ${schemaKey(component)}`);
  }
  components[name] = component;
  const ref = { $ref: `${COMPONENTS}${name}` };
  if (Object.keys(use).length === 0) return ref;
  // OpenAPI 3.0 reads `nullable` only beside a `type`.
  return { ...(use.nullable === true && component.type !== undefined ? { type: component.type } : {}), ...use, allOf: [ref] };
}

/**
 * OpenAPI 3.0 schemas are an older JSON Schema: `example` (one) rather than `examples`, and
 * boolean `exclusiveMinimum` beside `minimum`.
 */
function toOpenApi30(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toOpenApi30);
  if (!isObject(node)) return node;
  const copy: Json = {};
  for (const [k, v] of Object.entries(node)) copy[k] = toOpenApi30(v);
  // A parameter's or media type's `examples` is a map, not a list: only lists are schema keywords.
  if (Array.isArray(copy.examples)) {
    if (copy.example === undefined && copy.examples.length > 0) copy.example = copy.examples[0];
    delete copy.examples;
  }
  for (const [exclusive, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof copy[exclusive] === 'number') {
      copy[bound] = copy[exclusive];
      copy[exclusive] = true;
    }
  }
  return copy;
}

/** A GET route that also answers HEAD is two operations: `getX` and `headX`. */
function headOperationIds(paths: Json): void {
  for (const operations of Object.values(paths)) {
    if (!isObject(operations) || !isObject(operations.head)) continue;
    const id = operations.head.operationId;
    if (typeof id === 'string' && id.startsWith('get')) operations.head = { ...operations.head, operationId: `head${id.slice('get'.length)}` };
  }
}

/**
 * A query parameter with a default may be left out (the hub fills it in): TypeBox lists it as
 * required, which would make every generated client send it.
 */
function defaultedQueryOptional(paths: Json): void {
  for (const operations of Object.values(paths)) {
    if (!isObject(operations)) continue;
    for (const operation of Object.values(operations)) {
      if (!isObject(operation) || !Array.isArray(operation.parameters)) continue;
      operation.parameters = operation.parameters.map((p: unknown) =>
        isObject(p) && p.in === 'query' && p.required === true && isObject(p.schema) && p.schema.default !== undefined ? { ...p, required: false } : p,
      );
    }
  }
}

export function openApiOptions(version: string): FastifyDynamicSwaggerOptions {
  const { byKey, annotations } = schemaNames();
  return {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'edgeml hub',
        version,
        description: 'Model registry, builds, fleet rollouts and telemetry.',
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      // Relative: the document describes the hub that serves it, whatever its address.
      servers: [{ url: '/' }],
      components: { securitySchemes: { [SECURITY_SCHEME]: { type: 'http', scheme: 'bearer', description: 'an edgeml API key: `Authorization: Bearer emk_…`' } } },
    },
    transform: ({ schema, url, route }) => {
      const docBody = route.config?.docBody;
      const scoped = route.config?.scope !== undefined;
      const source = (schema ?? {}) as Json;
      const response = { ...frameworkErrors(source, scoped, Boolean(source.body ?? docBody)), ...(source.response as Json | undefined) };
      const named: Json = {};
      // `produces` (Swagger 2) would make error answers NDJSON too: 2xx responses name their own content types.
      const { produces: _produces, ...own } = source;
      for (const [k, v] of Object.entries({ ...own, response, ...(docBody ? { body: docBody } : {}) })) {
        named[k] = k === 'response' ? Object.fromEntries(Object.entries(v as Json).map(([code, r]) => [code, titled(r, byKey)])) : titled(v, byKey, k === 'querystring' || k === 'params' || k === 'headers');
      }
      named.security = scoped ? [{ [SECURITY_SCHEME]: [] }] : [];
      return { schema: named as typeof schema, url };
    },
    transformObject: (documentObject) => {
      const document = toOpenApi30((documentObject as { openapiObject: Json }).openapiObject) as Json & { paths: Json; components: Json & { schemas?: Json } };
      const schemas: Json = { ...document.components.schemas };
      const paths = hoistComponents(document.paths, schemas, annotations) as Json;
      headOperationIds(paths);
      defaultedQueryOptional(paths);
      const sorted = Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b)));
      return { ...document, paths, components: { ...document.components, schemas: sorted } } as ReturnType<SwaggerTransformObject>;
    },
  };
}
