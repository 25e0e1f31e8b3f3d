/**
 * Contexts (cli/contexts.ts, cli/client-config.ts): where the file lives, its modes, and how a
 * context sits under flags and environment variables. Each test uses its own temp directory.
 */
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { contextDir, contextNamed, readContexts, selectedContext, writeContexts } from '../../cli/contexts.js';
import { loadClientConfig } from '../../cli/client-config.js';
import { addContextCommands, contextList, renderContextList } from '../../cli/commands/context.js';
import { clientAction, withClientOptions, type CliIo } from '../../cli/commands/client-command.js';
import { ErrorCodes, isEdgemlError } from '../../shared/errors.js';

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

/** A CliIo over `env` whose stdout is collected. */
function testIo(env: Record<string, string | undefined>, cwd = process.cwd()): { io: CliIo; stdout: () => string } {
  let stdout = '';
  const io = {
    env,
    stdout: new Writable({ write: (chunk, _enc, done) => void ((stdout += String(chunk)), done()) }),
    stderr: new Writable({ write: (_chunk, _enc, done) => done() }),
    cwd,
    interruptSignal: () => new AbortController().signal,
  } as unknown as CliIo;
  return { io, stdout: () => stdout };
}

/** `edgeml context ARGS` through the real commands. */
async function contextCommand(io: CliIo, ...args: string[]): Promise<void> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined });
  addContextCommands(program, io);
  await program.parseAsync(['node', 'edgeml', 'context', ...args]);
}

test('names inherited from Object.prototype are not contexts', async (t) => {
  const env = { EDGEML_CONFIG_DIR: tempDir(t) };
  writeContexts(env, { contexts: { lab: { hub: 'http://lab:1' } } });
  for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
    t.true(isEdgemlError(t.throws(() => contextNamed(readContexts(env), name, 'context use')), ErrorCodes.CLI_INPUT_INVALID), name);
    t.true(isEdgemlError(t.throws(() => selectedContext(name, env)), ErrorCodes.CLI_INPUT_INVALID), name);
  }
  const { io } = testIo(env);
  const err = await t.throwsAsync(contextCommand(io, 'use', 'constructor'));
  t.regex(err!.message, /context use: no context "constructor"/);
  t.is(readContexts(env).current, undefined, 'nothing was written');
  await contextCommand(io, 'add', 'constructor', '--hub', 'http://c:1');
  t.deepEqual(readContexts(env).contexts.constructor, { hub: 'http://c:1' }, 'added as a new name, not "replaced"');
});

test('the temporary file has a random name created exclusively: a symlink planted at the old predictable name is not followed', (t) => {
  const dir = tempDir(t);
  const env = { EDGEML_CONFIG_DIR: join(dir, 'edgeml') };
  mkdirSync(env.EDGEML_CONFIG_DIR, { mode: 0o700 });
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'untouched');
  symlinkSync(victim, join(env.EDGEML_CONFIG_DIR, `config.json.${process.pid}.tmp`));
  writeContexts(env, { current: 'lab', contexts: { lab: { hub: 'http://lab:1' } } });
  t.is(readFileSync(victim, 'utf8'), 'untouched');
  t.deepEqual(readdirSync(env.EDGEML_CONFIG_DIR).sort(), ['config.json', `config.json.${process.pid}.tmp`], 'no temporary file left behind');
  t.is(statSync(join(env.EDGEML_CONFIG_DIR, 'config.json')).mode & 0o777, 0o600);
});

test('a directory other users may write to is refused, and nothing is written in it', (t) => {
  for (const mode of [0o777, 0o770, 0o702]) {
    const env = { EDGEML_CONFIG_DIR: join(tempDir(t), 'edgeml') };
    mkdirSync(env.EDGEML_CONFIG_DIR);
    chmodSync(env.EDGEML_CONFIG_DIR, mode);
    const err = t.throws(() => writeContexts(env, { contexts: { lab: { hub: 'http://lab:1' } } }));
    t.true(isEdgemlError(err, ErrorCodes.CONFIG_INVALID), mode.toString(8));
    t.regex(err!.message, /is writable by other users \(mode 07\d\d\).*chmod 700/);
    t.deepEqual(readdirSync(env.EDGEML_CONFIG_DIR), []);
  }
  const env = { EDGEML_CONFIG_DIR: join(tempDir(t), 'edgeml') };
  mkdirSync(env.EDGEML_CONFIG_DIR);
  chmodSync(env.EDGEML_CONFIG_DIR, 0o755);
  t.notThrows(() => writeContexts(env, { contexts: {} }), 'readable by others is fine: the key file is elsewhere');
});

test('a damaged contexts file does not stop a command that names its hub, unless it also names a context', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'config.json'), '{"contexts": ');
  const run = async (env: Record<string, string | undefined>, ...args: string[]) => {
    let ran = false;
    const { io } = testIo({ EDGEML_CONFIG_DIR: dir, ...env });
    const command = withClientOptions(new Command('probe')).exitOverride();
    command.action(clientAction(io, async () => void (ran = true)));
    await command.parseAsync(['node', 'probe', ...args]);
    return ran;
  };
  t.true(await run({}, '--hub', 'http://127.0.0.1:1'));
  t.true(await run({ EDGEML_HUB: 'http://127.0.0.1:1' }));
  for (const [env, args] of [[{}, []], [{}, ['--hub', 'http://127.0.0.1:1', '--context', 'lab']], [{ EDGEML_HUB: 'http://127.0.0.1:1', EDGEML_CONTEXT: 'lab' }, []]] as const) {
    const err = await t.throwsAsync(run(env, ...args));
    t.true(isEdgemlError(err, ErrorCodes.CONFIG_INVALID), JSON.stringify([env, args]));
  }
  // A current context the file lacks is skipped the same way.
  writeFileSync(join(dir, 'config.json'), '{"current": "gone", "contexts": {}}');
  t.true(await run({}, '--hub', 'http://127.0.0.1:1'));
  t.true(isEdgemlError(await t.throwsAsync(run({})), ErrorCodes.CLI_INPUT_INVALID));
});

test('context add takes --ca like the client commands (and --ca-file as before); the CA must be PEM', async (t) => {
  const dir = tempDir(t);
  const env = { EDGEML_CONFIG_DIR: join(dir, 'edgeml') };
  const { io } = testIo(env, dir);
  writeFileSync(join(dir, 'not-a-ca.pem'), 'hello');
  const err = await t.throwsAsync(contextCommand(io, 'add', 'lab', '--hub', 'http://lab:1', '--ca', 'not-a-ca.pem'));
  t.regex(err!.message, /--ca .*not-a-ca\.pem/);
  const old = await t.throwsAsync(contextCommand(io, 'add', 'lab', '--hub', 'http://lab:1', '--ca-file', 'not-a-ca.pem'));
  t.regex(old!.message, /--ca-file .*not-a-ca\.pem/);
  t.deepEqual(readContexts(env), { contexts: {} }, 'nothing stored for a bad CA');
});
