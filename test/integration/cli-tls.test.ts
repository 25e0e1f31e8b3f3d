/**
 * The CLI against a real hub serving HTTPS (--tls auto): it works trusting the CA `edgeml hub ca`
 * prints (EDGEML_CA or --ca), and every way of getting TLS wrong (no CA, another CA, plain HTTP to
 * the HTTPS port) is one line on stderr with CLI_E_TLS: no stack, no OpenSSL internals, and no
 * key. The wrong-CA request is a POST, which the CLI would retry on a connection failure: a
 * certificate failure is answered at once.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cleanEnv, jsonOf, runCli } from '../helpers/cli.js';
import { startHub, tempDir } from '../helpers/edgeml-process.js';
import { makeCa } from '../helpers/tls-certs.js';

test('the CLI trusts the hub through its CA, and says in one line what is wrong with TLS', async (t) => {
  const hub = await startHub(t, ['--tls', 'auto']);
  t.regex(hub.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const dir = await tempDir(t);
  const printed = await runCli(['hub', 'ca', '--data', hub.data], cleanEnv());
  t.is(printed.code, 0, printed.stderr);
  const caFile = join(dir, 'hub-ca.pem');
  await writeFile(caFile, printed.stdout);
  const keyFile = join(dir, 'admin.key');
  await writeFile(keyFile, hub.adminKey, { mode: 0o600 });
  const env = { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_API_KEY_FILE: keyFile };

  t.deepEqual(jsonOf(t, await runCli(['device', 'list', '--json'], { ...env, EDGEML_CA: caFile })), { devices: [] });
  t.deepEqual(jsonOf(t, await runCli(['device', 'list', '--ca', caFile, '--json'], env)), { devices: [] });

  const otherCa = join(dir, 'other-ca.pem');
  await writeFile(otherCa, (await makeCa('not the hub')).pem);
  const failures = {
    'no CA': await runCli(['device', 'list'], env),
    'another CA': await runCli(['device', 'enroll', 'tls-1', '--ca', otherCa], env),
    'plain HTTP': await runCli(['device', 'list'], { ...env, EDGEML_HUB: hub.url.replace('https:', 'http:'), EDGEML_CA: caFile }),
  };
  const verify = `^edgeml: cannot verify the hub's certificate at ${hub.url}: .+; pass the hub's CA with --ca FILE or EDGEML_CA \\(\`edgeml hub ca\` prints it\\) \\[CLI_E_TLS\\]\\n$`;
  t.regex(failures['no CA'].stderr, new RegExp(verify));
  t.regex(failures['another CA'].stderr, new RegExp(verify));
  t.is(failures['plain HTTP'].stderr, `edgeml: the hub at ${hub.url.replace('https:', 'http:')} speaks HTTPS: use ${hub.url} [CLI_E_TLS]\n`);
  for (const [what, r] of Object.entries(failures)) {
    t.is(r.code, 1, what);
    t.is(r.stdout, '', what);
    t.notRegex(r.stderr, /SSL routines|error:[0-9A-F]{8}|\n\s+at /, what);
    t.false(r.stderr.includes(hub.adminKey), what);
  }
});
