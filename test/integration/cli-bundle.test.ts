/**
 * The CLI's client bundle (scripts/build-cli.mjs, `npm run build`) against a real hub: bin/edgeml
 * picks it while fresh, and it answers exactly as the compiled tree (dist/cli/bin.js) does — help,
 * a list, a JSON error and its exit code, a usage error — while `hub ca` still runs from the tree.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanEnv, runCli, type CliResult } from '../helpers/cli.js';
import { startHub } from '../helpers/edgeml-process.js';
import { entryFor } from '../../cli/entry.js';

const distCli = new URL('../../dist/cli/', import.meta.url);
const bundle = new URL('edgeml-client.mjs', distCli);
const tree = new URL('bin.js', distCli);

function run(entry: URL, args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [fileURLToPath(entry), ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

test('the client bundle is used when fresh and answers as the compiled tree', async (t) => {
  t.is(entryFor(['model', 'list'], distCli).href, bundle.href, 'no fresh bundle in dist/cli: run `npm run build`');
  t.is(entryFor(['hub', 'ca'], distCli).href, tree.href);

  const hub = await startHub(t);
  const env = { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey };
  const cases: [what: string, args: string[], code: number][] = [
    ['help', ['--help'], 0],
    ['command help', ['model', 'list', '--help'], 0],
    ['a list', ['model', 'list', '--json'], 0],
    ['a text list', ['device', 'list'], 0],
    ['a JSON error', ['model', 'show', 'nosuch', '--json'], 1],
    ['a usage error', ['model', 'nosuch'], 2],
    ['an unknown hub', ['model', 'list', '--hub', 'http://127.0.0.1:1'], 1],
  ];
  for (const [what, args, code] of cases) {
    const [viaBundle, viaTree] = await Promise.all([run(bundle, args, env), run(tree, args, env)]);
    t.is(viaBundle.code, code, `${what}: ${viaBundle.stderr}`);
    t.deepEqual(viaBundle, viaTree, what);
  }
  const jsonError = await run(bundle, ['model', 'show', 'nosuch', '--json'], env);
  t.regex((JSON.parse(jsonError.stderr) as { error: { code: string } }).error.code, /NOT_FOUND/);

  // Through bin/edgeml: the version (from the tree), a list (bundle) and `hub ca` (tree).
  const version = await runCli(['--version'], env);
  t.is(version.code, 0);
  t.regex(version.stdout, /^\d+\.\d+\.\d+\S*\n$/);
  t.deepEqual(await runCli(['model', 'list', '--json'], env), await run(tree, ['model', 'list', '--json'], env));
  const ca = await runCli(['hub', 'ca', '--data', hub.data, '--json'], env);
  t.is(ca.code, 0, ca.stderr);
  t.regex((JSON.parse(ca.stdout) as { certificate: string }).certificate, /^-----BEGIN CERTIFICATE-----/);
});
