/**
 * cli/known-env.ts: every EDGEML_* name the repository uses is listed (a grep of the tree, so a name
 * added later cannot be forgotten), and an unknown one gets a warning with the nearest known name.
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_ENV, HUB_ENV, KNOWN_ENV, PROCESS_ENV_PREFIXES, unknownEnvWarnings } from '../../cli/known-env.js';
import { HUB_ENV_PREFIX, HubConfigSchema } from '../../hub/config.js';
import { AGENT_ENV_PREFIX, AgentConfigSchema } from '../../agent/config.js';
import { envName } from '../../shared/config-loader.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const SEARCHED = ['hub', 'agent', 'cli', 'client', 'shared', 'images', 'scripts', 'test', 'bench', 'portal'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'fixtures-out', '.git']);
// Not variables: error codes (EDGEML_E_*). The hub's and the agent's variables are checked against their
// schemas below instead (tests spell wrong ones on purpose, to see their loaders refuse them).
const NOT_CLIENT_VARIABLES = /^EDGEML_E_/;

function* files(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIPPED_DIRS.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile() && statSync(path).size < 2_000_000) yield path;
  }
}

function namesInRepo(): Set<string> {
  const names = new Set<string>();
  for (const top of SEARCHED) {
    for (const path of files(join(ROOT, top))) {
      for (const [name] of readFileSync(path, 'latin1').matchAll(/\bEDGEML_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(name);
    }
  }
  return names;
}

test('every EDGEML_* name used in the repository is known', (t) => {
  const names = namesInRepo();
  t.true(names.has('EDGEML_HUB'), 'the grep finds names at all');
  const missing = [...names].filter(
    (n) => !NOT_CLIENT_VARIABLES.test(n) && !PROCESS_ENV_PREFIXES.some((p) => n.startsWith(p)) && !KNOWN_ENV.includes(n),
  );
  t.deepEqual(missing, [], 'add these names to KNOWN_ENV in cli/known-env.ts');
});

test('the contract names are listed', (t) => {
  for (const name of ['EDGEML_SERVICE_KEY', 'EDGEML_SERVICE_CA', 'EDGEML_MODEL_DIR', 'EDGEML_CONTEXT', 'EDGEML_CONFIG_DIR', 'EDGEML_DEBUG']) {
    t.true(KNOWN_ENV.includes(name), name);
  }
});

test('an unknown variable warns with the nearest known name', (t) => {
  // Built from parts so the repository grep above does not see a misspelt name.
  const typo = ['EDGEML', 'HBU'].join('_');
  t.deepEqual(unknownEnvWarnings({ [typo]: 'x', EDGEML_HUB: 'http://h', PATH: '/bin' }), [
    `warning: unknown environment variable ${typo} is ignored (did you mean EDGEML_HUB?)`,
  ]);
});

test('a name far from every known one warns without a suggestion', (t) => {
  const far = ['EDGEML', 'QWERTYUIOP'].join('_');
  t.deepEqual(unknownEnvWarnings({ [far]: '1' }), [`warning: unknown environment variable ${far} is ignored`]);
});

test("the hub's and the agent's lists are exactly their configuration keys and config-file variables", (t) => {
  const expected = (schema: { properties: object }, prefix: string) => [...Object.keys(schema.properties).map((k) => envName(prefix, k)), `${prefix}CONFIG`].sort();
  t.deepEqual([...HUB_ENV].sort(), expected(HubConfigSchema, HUB_ENV_PREFIX));
  t.deepEqual([...AGENT_ENV].sort(), expected(AgentConfigSchema, AGENT_ENV_PREFIX));
  t.deepEqual(PROCESS_ENV_PREFIXES, [HUB_ENV_PREFIX, AGENT_ENV_PREFIX]);
});

test('hub and agent variables: their own names pass (as `hub start` and `agent start` read them), any other warns', (t) => {
  const valid = { EDGEML_HUB_HTTP: '127.0.0.1:1', EDGEML_HUB_CONFIG: '/h.json', EDGEML_AGENT_DATA: '/d', EDGEML_AGENT_DEVICE_ID: 'gw' };
  t.deepEqual(unknownEnvWarnings(valid), []);
  // Built from parts so the repository grep above does not see them.
  const name = (rest: string) => `EDGEML_${rest}`;
  const [url, mqqt, agentTypo, far] = [name('HUB_URL'), name('HUB_MQQT'), name('AGENT_DEVICEID'), name('AGENT_QWERTYUIOP')];
  t.deepEqual(unknownEnvWarnings({ ...valid, [url]: 'http://h:1', [mqqt]: '1', [agentTypo]: 'gw', [far]: '1' }), [
    `warning: unknown environment variable ${agentTypo} is ignored (did you mean EDGEML_AGENT_DEVICE_ID?)`,
    `warning: unknown environment variable ${far} is ignored`,
    `warning: unknown environment variable ${mqqt} is ignored (did you mean EDGEML_HUB_MQTT?)`,
    `warning: unknown environment variable ${url} is ignored (did you mean EDGEML_HUB?)`,
  ]);
});
