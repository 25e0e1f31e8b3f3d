/** The routes a hub lists in its `/openapi.json`, as a fuzzer needs them. */
import type { JsonSchema } from './json-schema-values.js';

export interface Param {
  name: string;
  schema: JsonSchema;
  required: boolean;
}

export interface Route {
  method: string;
  /** The OpenAPI path, with `{name}` placeholders. */
  path: string;
  pathParams: Param[];
  query: Param[];
  /** Content types the route documents, each with its schema. */
  body: Record<string, JsonSchema>;
}

interface OpenApiOperation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}

export function routesOf(document: { paths?: Record<string, Record<string, OpenApiOperation>> }, methods: readonly string[]): Route[] {
  const routes: Route[] = [];
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    for (const [method, op] of Object.entries(operations)) {
      if (!methods.includes(method.toUpperCase())) continue;
      const params = (where: string) =>
        (op.parameters ?? []).filter((p) => p.in === where).map((p) => ({ name: p.name, schema: p.schema ?? {}, required: p.required === true }));
      const body = Object.fromEntries(Object.entries(op.requestBody?.content ?? {}).map(([type, c]) => [type, c.schema ?? {}]));
      routes.push({ method: method.toUpperCase(), path, pathParams: params('path'), query: params('query'), body });
    }
  }
  return routes;
}
