/**
 * client/operations.ts, written from the OpenAPI document: each operation's method, path, and the
 * TypeScript types of its input and answer, the component schemas referred to as
 * `Static<typeof Name>` of the shared/api export they are named after. Type-only imports: the
 * client loads no TypeBox at run time.
 */
import { API_MODULES, schemaNames } from './openapi-names.js';

type Json = Record<string, any>;
const COMPONENTS = '#/components/schemas/';
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** The TypeScript type of a (3.0) schema; named components by their export. */
function tsType(schema: Json | undefined, used: Set<string>): string {
  if (!schema) return 'unknown';
  const nullable = schema.nullable === true ? ' | null' : '';
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.slice(COMPONENTS.length);
    used.add(name);
    return `Static<typeof ${name}>`;
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length === 1) return `${tsType(schema.allOf[0], used)}${nullable}`;
  if (Array.isArray(schema.enum)) return schema.enum.map((v: unknown) => JSON.stringify(v)).join(' | ') + nullable;
  if (Array.isArray(schema.anyOf ?? schema.oneOf)) return (schema.anyOf ?? schema.oneOf).map((s: Json) => tsType(s, used)).join(' | ') + nullable;
  switch (schema.type) {
    case 'string':
      return `string${nullable}`;
    case 'integer':
    case 'number':
      return `number${nullable}`;
    case 'boolean':
      return `boolean${nullable}`;
    case 'array':
      return `Array<${tsType(schema.items, used)}>${nullable}`;
    case 'object':
      if (schema.properties) return `{ ${Object.entries(schema.properties as Json).map(([k, v]) => `${k}${(schema.required ?? []).includes(k) ? '' : '?'}: ${tsType(v as Json, used)}`).join('; ')} }${nullable}`;
      return `Record<string, unknown>${nullable}`;
    default:
      return 'unknown';
  }
}

const isJson = (content: Json | undefined): boolean => content !== undefined && Object.keys(content).every((t) => t === 'application/json');

interface Rendered {
  table: string;
  types: string;
}

function renderOperation(method: string, path: string, op: Json, used: Set<string>): Rendered {
  const params: Json[] = op.parameters ?? [];
  const fields = (where: string) => params.filter((p) => p.in === where).map((p) => `${p.name}${p.required ? '' : '?'}: ${tsType(p.schema, used)}`);
  const input: string[] = [];
  const pathFields = fields('path');
  const queryFields = fields('query');
  if (pathFields.length > 0) input.push(`params: { ${pathFields.join('; ')} }`);
  const queryRequired = params.some((p) => p.in === 'query' && p.required);
  if (queryFields.length > 0) input.push(`query${queryRequired ? '' : '?'}: { ${queryFields.join('; ')} }`);
  const content: Json | undefined = op.requestBody?.content;
  let body: 'none' | 'json' | 'upload' = 'none';
  if (content && isJson(content)) {
    body = 'json';
    input.push(`body${op.requestBody.required ? '' : '?'}: ${tsType(content['application/json'].schema, used)}`);
  } else if (content) {
    body = 'upload';
    input.push(`upload: Upload<${Object.keys(content).map((t) => JSON.stringify(t)).join(' | ')}>`);
  }
  const ok = Object.entries(op.responses as Json).filter(([code]) => code.startsWith('2'));
  const answers = ok.filter(([, r]) => r.content).map(([, r]) => r.content as Json);
  let response: 'json' | 'empty' | 'download' = 'empty';
  let result = 'undefined';
  if (answers.length > 0 && answers.every(isJson)) {
    response = 'json';
    result = [...new Set(answers.map((c) => tsType(c['application/json'].schema, used)))].join(' | ');
  } else if (answers.length > 0) {
    response = 'download';
    result = 'Download';
  }
  const id = op.operationId as string;
  return {
    table: `  ${id}: { method: '${method.toUpperCase()}', path: '${path}', body: '${body}', response: '${response}' },`,
    types: `  ${id}: { input: { ${input.join('; ')} }; result: ${result} };`,
  };
}

/** The text of client/operations.ts for `document`. */
export function renderOperations(document: Json): string {
  const used = new Set<string>();
  const rendered: Rendered[] = [];
  const ops: Array<[string, string, Json]> = [];
  for (const [path, operations] of Object.entries(document.paths as Json)) {
    for (const method of METHODS) if (operations[method]) ops.push([method, path, operations[method]]);
  }
  ops.sort(([, , a], [, , b]) => String(a.operationId).localeCompare(String(b.operationId)));
  for (const [method, path, op] of ops) rendered.push(renderOperation(method, path, op, used));
  const moduleOf = new Map<string, string>();
  for (const [module, exports] of Object.entries(API_MODULES)) for (const name of Object.keys(exports)) if (!moduleOf.has(name)) moduleOf.set(name, module);
  const named = schemaNames();
  if (named.clashes.length > 0) throw new Error(`schema names clash: ${named.clashes.join('; ')}`);
  const byModule = new Map<string, string[]>();
  for (const name of [...used].sort()) {
    const module = moduleOf.get(name);
    if (!module) throw new Error(`component ${name} is no shared/api export`);
    byModule.set(module, [...(byModule.get(module) ?? []), name]);
  }
  const imports = [...byModule.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([module, names]) => `import type { ${names.join(', ')} } from '../shared/api/${module}.js';`);
  return [
    '// Generated by `npm run generate:client` from the hub\'s OpenAPI document (hub/http/openapi-operations.ts): do not edit.',
    "import type { Static } from '@sinclair/typebox';",
    "import type { Download, Upload } from './hub-client.js';",
    ...imports,
    '',
    'export const OPERATIONS = {',
    ...rendered.map((r) => r.table),
    '} as const;',
    '',
    'export interface Operations {',
    ...rendered.map((r) => r.types),
    '}',
    '',
    'export type OperationId = keyof Operations;',
    "export type OperationInput<K extends OperationId> = Operations[K]['input'];",
    "export type OperationResult<K extends OperationId> = Operations[K]['result'];",
    '',
  ].join('\n');
}
