/**
 * Contexts (cli/contexts.ts, cli/client-config.ts): where the file lives, its modes, and how a
 * context sits under flags and environment variables. Each test uses its own temp directory.
 */
import test from 'ava';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextDir, readContexts, selectedContext, writeContexts } from '../../cli/contexts.js';
import { loadClientConfig } from '../../cli/client-config.js';
import { contextList, renderContextList } from '../../cli/commands/context.js';
import { ErrorCodes } from '../../shared/errors.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgeml-ctx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the directory: EDGEML_CONFIG_DIR, else $XDG_CONFIG_HOME/edgeml, else ~/.config/edgeml', (t) => {
  t.is(contextDir({ EDGEML_CONFIG_DIR: '/x', XDG_CONFIG_HOME: '/y' }), '/x');
  t.is(contextDir({ XDG_CONFIG_HOME: '/y', HOME: '/h' }), '/y/edgeml');
  t.is(contextDir({ HOME: '/h' }), '/h/.config/edgeml');
});

test('the file is written with mode 0600 in a 0700 directory, and read back', (t) => {
  const env = { EDGEML_CONFIG_DIR: join(tempDir(t), 'edgeml') };
  t.deepEqual(readContexts(env), { contexts: {} });
  writeContexts(env, { current: 'lab', contexts: { lab: { hub: 'http://127.0.0.1:8080', apiKeyFile: '/k' } } });
  t.is(statSync(env.EDGEML_CONFIG_DIR).mode & 0o777, 0o700);
  t.is(statSync(join(env.EDGEML_CONFIG_DIR, 'config.json')).mode & 0o777, 0o600);
  t.deepEqual(readContexts(env), { current: 'lab', contexts: { lab: { hub: 'http://127.0.0.1:8080', apiKeyFile: '/k' } } });
});

test('a damaged file is a configuration error naming it', (t) => {
  const env = { EDGEML_CONFIG_DIR: tempDir(t) };
  writeFileSync(join(env.EDGEML_CONFIG_DIR, 'config.json'), '{"contexts": {"a": {}}}');
  const err = t.throws(() => readContexts(env));
  t.is((err as { code?: string }).code, ErrorCodes.CONFIG_INVALID);
  t.regex(err!.message, /config\.json: context "a" has no "hub"/);
});

test('selection: --context, then EDGEML_CONTEXT, then the current one; an unknown name suggests a known one', (t) => {
  const env: Record<string, string | undefined> = { EDGEML_CONFIG_DIR: tempDir(t) };
  t.is(selectedContext(undefined, env), undefined);
  writeContexts(env, { current: 'lab', contexts: { lab: { hub: 'http://lab:1' }, prod: { hub: 'https://prod:1' } } });
  t.is(selectedContext(undefined, env)?.name, 'lab');
  t.is(selectedContext(undefined, { ...env, EDGEML_CONTEXT: 'prod' })?.name, 'prod');
  t.is(selectedContext('lab', { ...env, EDGEML_CONTEXT: 'prod' })?.name, 'lab');
  const err = t.throws(() => selectedContext('prd', env));
  t.is((err as { code?: string }).code, ErrorCodes.CLI_INPUT_INVALID);
  t.regex(err!.message, /--context: no context "prd" \(did you mean prod\?\)/);
});

test('precedence: flags > environment > context > defaults, setting by setting', (t) => {
  const context = { hub: 'http://lab:1', apiKeyFile: '/lab.key', ca: '/lab-ca.pem' };
  t.deepEqual(loadClientConfig({ flags: {}, env: {} }, context), context);
  t.is(loadClientConfig({ flags: {}, env: { EDGEML_API_KEY_FILE: '/env.key' } }, context).apiKeyFile, '/env.key');
  t.is(loadClientConfig({ flags: { ca: '/flag-ca.pem' }, env: {} }, context).ca, '/flag-ca.pem');
  t.is(loadClientConfig({ flags: {}, env: {} }).hub, 'http://127.0.0.1:8080');
});

test("a context's key and CA never go to another hub, and an explicit config file replaces the context", (t) => {
  const context = { hub: 'http://lab:1', apiKeyFile: '/lab.key' };
  t.deepEqual(loadClientConfig({ flags: { hub: 'http://other:1' }, env: {} }, context), { hub: 'http://other:1' });
  t.deepEqual(loadClientConfig({ flags: {}, env: { EDGEML_HUB: 'http://other:1' } }, context), { hub: 'http://other:1' });
  t.is(loadClientConfig({ flags: { hub: 'http://lab:1' }, env: {} }, context).apiKeyFile, '/lab.key');
  const dir = tempDir(t);
  writeFileSync(join(dir, 'c.json'), '{"hub": "http://file:1"}');
  t.deepEqual(loadClientConfig({ flags: {}, env: {}, file: join(dir, 'c.json') }, context), { hub: 'http://file:1' });
});

test('the list shows whether a key is set, never the key file or the key', (t) => {
  const list = contextList({ current: 'b', contexts: { b: { hub: 'http://b:1', apiKeyFile: '/secret/b.key' }, a: { hub: 'http://a:1' } } });
  t.deepEqual(list.contexts.map((c) => [c.name, c.current, c.apiKey]), [['a', false, false], ['b', true, true]]);
  const text = renderContextList(list);
  t.false(text.includes('/secret'));
  t.regex(text, /\*\s+b\s+http:\/\/b:1\s+set/);
});
