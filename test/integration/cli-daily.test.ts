/**
 * The CLI's daily sturdiness against a real hub (bin/edgeml from dist/): a closed stdout pipe exits
 * quietly, errors are one line (JSON under --json), contexts choose the hub and key, `--watch --json`
 * prints NDJSON until Ctrl-C, an unknown EDGEML_* variable warns. One hub for the file.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { EDGEML_BIN, spawnEdgeml, startHub, tempDir } from '../helpers/edgeml-process.js';
import { waitFor } from '../helpers/wait.js';

test('daily CLI: EPIPE, one-line errors, --json errors, contexts, --watch, unknown variables', async (t) => {
  const hub = await startHub(t);
  const base = cleanEnv();
  const env = { ...base, EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey };

  // A reader that has gone away before the answer is written: no EPIPE stack, the command's own exit code.
  const piped = spawn(process.execPath, [EDGEML_BIN, 'model', 'list', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  piped.stdout.destroy();
  let stderr = '';
  piped.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => piped.once('close', resolve));
  t.is(stderr, '', 'nothing on stderr for a closed stdout');
  t.is(code, 0);

  // Expected failures: one line naming the URL; under --json one JSON line, same exit code.
  const refused = await runCli(['model', 'list', '--hub', 'http://127.0.0.1:1'], env);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^edgeml: cannot reach the hub at http:\/\/127\.0\.0\.1:1: ECONNREFUSED.*\[CLI_E_HUB_UNREACHABLE\]\n$/);
  const wrongScheme = await runCli(['model', 'list', '--hub', hub.url.replace('http://', 'https://')], env);
  t.is(wrongScheme.code, 1);
  t.is(wrongScheme.stderr.trim().split('\n').length, 1, wrongScheme.stderr);
  t.regex(wrongScheme.stderr, /does not speak HTTPS.*\[CLI_E_TLS\]/);
  const jsonError = await runCli(['model', 'show', 'nosuch', '--json'], env);
  t.is(jsonError.code, 1);
  t.is(jsonError.stderr.trim().split('\n').length, 1);
  const body = JSON.parse(jsonError.stderr) as { error: { code: string; message: string } };
  t.is(typeof body.error.code, 'string');
  t.regex(body.error.message, /nosuch/);
  const usage = await runCli(['model', 'lst', '--json'], env);
  t.is(usage.code, 2);
  t.is((JSON.parse(usage.stderr) as { error: { code: string } }).error.code, 'CLI_E_INPUT_INVALID');

  // Contexts: the current one supplies hub and key; the key never shows; --context picks another.
  const dir = await tempDir(t, 'edgeml-ctx-');
  const keyFile = join(dir, 'admin.key');
  await writeFile(keyFile, `${hub.adminKey}\n`);
  const ctxEnv = { ...base, EDGEML_CONFIG_DIR: join(dir, 'config') };
  const noContext = await runCli(['model', 'list'], ctxEnv);
  t.is(noContext.code, 1, 'no context: the default hub, nobody there');
  t.regex(noContext.stderr, /^edgeml: cannot reach the hub at http:\/\/127\.0\.0\.1:8080: ECONNREFUSED.*\[CLI_E_HUB_UNREACHABLE\]\n$/);
  t.is((await runCli(['context', 'add', 'lab', '--hub', hub.url, '--api-key-file', keyFile], ctxEnv)).code, 0);
  t.is((await runCli(['context', 'add', 'nowhere', '--hub', 'http://127.0.0.1:1'], ctxEnv)).code, 0);
  const viaContext = await runCli(['model', 'list', '--json'], ctxEnv);
  t.is(viaContext.code, 0, viaContext.stderr);
  t.deepEqual((JSON.parse(viaContext.stdout) as { versions: unknown[] }).versions, []);
  t.is((await runCli(['model', 'list', '--context', 'nowhere'], ctxEnv)).code, 1);
  const list = await runCli(['context', 'list'], ctxEnv);
  t.false(list.stdout.includes(hub.adminKey));
  t.regex(list.stdout, /\*\s+lab\s+http:\/\/127\.0\.0\.1:\d+\s+set/);

  // --watch --json: one JSON document per change on stdout, until Ctrl-C, which ends it with 0.
  const watching = spawnEdgeml(t, ['device', 'list', '--watch', '--json', '--interval', '500ms'], env);
  await waitFor('the first NDJSON line', () => watching.logs.find((l) => Array.isArray(l.devices)));
  t.is((await runCli(['device', 'enroll', 'cam-1'], env)).code, 0);
  await waitFor('a line with the enrolled device', () => watching.logs.find((l) => Array.isArray(l.devices) && l.devices.length === 1));
  t.is(await watching.kill('SIGINT'), 0);
  t.is(watching.logs.filter((l) => Array.isArray(l.devices)).length, 2, 'a line per change only');

  // An unknown EDGEML_* variable: a warning with a suggestion, the command still runs.
  const typo = ['EDGEML', 'API_KYE'].join('_');
  const warned = await runCli(['model', 'list'], { ...env, [typo]: 'x' });
  t.is(warned.code, 0);
  t.regex(warned.stderr, new RegExp(`unknown environment variable ${typo} is ignored \\(did you mean EDGEML_API_KEY\\?\\)`));
  // A hub-prefixed name the hub does not read either (EDGEML_HUB_URL for EDGEML_HUB) warns too.
  const hubTypo = ['EDGEML', 'HUB', 'URL'].join('_');
  const hubWarned = await runCli(['model', 'list'], { ...env, [hubTypo]: 'http://127.0.0.1:1' });
  t.is(hubWarned.code, 0);
  t.regex(hubWarned.stderr, new RegExp(`unknown environment variable ${hubTypo} is ignored \\(did you mean EDGEML_HUB\\?\\)`));
});
