/**
 * Names for the OpenAPI component schemas: every object-shaped schema exported by a shared/api
 * module is a component named after its export (`Device`, `DeviceList`…). Matched by content, not
 * identity: TypeBox's `Type.Optional(Device)` and `Type.Composite` make copies, and a copy of
 * `Device` is still a `Device` to a client.
 */
import { Kind } from '@sinclair/typebox';
import * as apikeys from '../../shared/api/apikeys.js';
import * as ca from '../../shared/api/ca.js';
import * as common from '../../shared/api/common.js';
import * as datasets from '../../shared/api/datasets.js';
import * as deployments from '../../shared/api/deployments.js';
import * as devices from '../../shared/api/devices.js';
import * as images from '../../shared/api/images.js';
import * as lineage from '../../shared/api/lineage.js';
import * as manifests from '../../shared/api/manifests.js';
import * as modelUpdates from '../../shared/api/model-updates.js';
import * as models from '../../shared/api/models.js';
import * as prefix from '../../shared/api/prefix.js';
import * as problems from '../../shared/api/problems.js';
import * as retraining from '../../shared/api/retraining.js';
import * as rollouts from '../../shared/api/rollouts.js';
import * as rotations from '../../shared/api/rotations.js';
import * as telemetry from '../../shared/api/telemetry.js';
import * as trainers from '../../shared/api/trainers.js';
import * as where from '../../shared/api/where.js';

/** Every shared/api module by its file name (a unit test checks none is missing). */
export const API_MODULES: Record<string, Record<string, unknown>> = {
  apikeys,
  ca,
  common,
  datasets,
  deployments,
  devices,
  images,
  lineage,
  manifests,
  'model-updates': modelUpdates,
  models,
  prefix,
  problems,
  retraining,
  rollouts,
  rotations,
  telemetry,
  trainers,
  where,
};

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
