/**
 * compileChecker skips ajv's meta-schema check (CLI start-up): every TypeBox schema it may be given
 * is checked here instead — the protocol, the REST types, the configurations.
 */
import { readdirSync } from 'node:fs';
import { Kind } from '@sinclair/typebox';
import test from 'ava';
import { makeAjv } from '../../shared/schema.js';
import * as protocol from '../../shared/protocol.js';
import { HubConfigSchema } from '../../hub/config.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { ClientConfigSchema } from '../../cli/client-config.js';

const apiDir = new URL('../../shared/api/', import.meta.url);

test('every exported schema of the protocol, the REST API and the configurations passes the meta-schema', async (t) => {
  const modules: Record<string, Record<string, unknown>> = { protocol, config: { HubConfigSchema, AgentConfigSchema, ClientConfigSchema } };
  for (const file of readdirSync(apiDir).filter((f) => f.endsWith('.ts'))) {
    modules[`api/${file}`] = (await import(new URL(file, apiDir).href)) as Record<string, unknown>;
  }
  const ajv = makeAjv({});
  let checked = 0;
  for (const [module, exports] of Object.entries(modules)) {
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value !== 'object' || value === null || !(Kind in value)) continue;
      t.true(ajv.validateSchema(value) as boolean, `${module} ${name}: ${ajv.errorsText(ajv.errors)}`);
      checked++;
    }
  }
  t.true(checked > 100, `only ${checked} schemas found`);
});
