/**
 * Names for the OpenAPI component schemas: every object-shaped schema exported by a shared/api
 * module is a component named after its export (`Device`, `DeviceList`…). Matched by content, not
 * identity: TypeBox's `Type.Optional(Device)` and `Type.Composite` make copies, and a copy of
 * `Device` is still a `Device` to a client.
 */
import { readdirSync } from 'node:fs';
import { Kind } from '@sinclair/typebox';

/**
 * Every shared/api module by its file name, read from the directory so that a new module cannot
 * be left out (`.ts` under tsx, `.js` in dist/).
 */
const API_DIR = new URL('../../shared/api/', import.meta.url);
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const API_MODULES: Record<string, Record<string, unknown>> = Object.fromEntries(
  await Promise.all(
    readdirSync(API_DIR)
      .filter((f) => f.endsWith(EXT) && !f.endsWith(`.d${EXT}`))
      .sort()
      .map(async (f) => [f.slice(0, -EXT.length), (await import(new URL(f, API_DIR).href)) as Record<string, unknown>] as const),
  ),
);

export interface SchemaNames {
  /** Schema content (`schemaKey`) → component name. */
  byKey: Map<string, string>;
  /** Component name → the export's own `description` and `example` (a use of it may give others, or drop them). */
  annotations: Map<string, { description?: unknown; example?: unknown }>;
  /** One name given to different schemas (in different modules): a unit test keeps this empty. */
  clashes: string[];
}

/** What identifies a schema: its JSON (TypeBox's symbols, which copies differ in, are not part of it). */
export function schemaKey(schema: unknown): string {
  return JSON.stringify(schema);
}

/** Objects and unions are components; strings, numbers and arrays stay inline (their items are named). */
function isComponent(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || !(Kind in value)) return false;
  const schema = value as Record<string, unknown>;
  return schema.type === 'object' || 'anyOf' in schema || 'oneOf' in schema || 'allOf' in schema;
}

export function schemaNames(modules: Record<string, Record<string, unknown>> = API_MODULES): SchemaNames {
  const byKey = new Map<string, string>();
  const keyOf = new Map<string, string>();
  const from = new Map<string, string>();
  const annotations = new Map<string, { description?: unknown; example?: unknown }>();
  const clashes: string[] = [];
  for (const [module, exports] of Object.entries(modules)) {
    for (const [name, value] of Object.entries(exports)) {
      if (!isComponent(value)) continue;
      const key = schemaKey(value);
      const known = keyOf.get(name);
      if (known !== undefined && known !== key) clashes.push(`${name}: two different schemas (${from.get(name)}, ${module})`);
      if (known !== undefined) continue;
      keyOf.set(name, key);
      from.set(name, module);
      annotations.set(name, {
        ...(value.description !== undefined ? { description: value.description } : {}),
        ...(Array.isArray(value.examples) && value.examples.length > 0 ? { example: value.examples[0] } : {}),
      });
      // Two exports with the same content (`ImageLogQuery`, `TrainerLogQuery`) are one component: the first name, in module order.
      if (!byKey.has(key)) byKey.set(key, name);
    }
  }
  return { byKey, annotations, clashes };
}
