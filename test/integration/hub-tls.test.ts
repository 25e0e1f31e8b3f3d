/**
 * HTTPS for the hub's REST API (`--tls auto`): a certificate from the hub's own CA that curl and
 * openssl verify against DATA/ca/ca.crt, no plain HTTP on the port, a wrong CA refused; the CA the
 * same from GET /api/v1/ca and `edgeml hub ca`; `--tls off` refused off loopback.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, cleanEnv } from '../helpers/cli.js';
import { spawnEdgeml, startHub, tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';

test('--tls auto: curl and openssl verify the hub against its CA; plain HTTP and a wrong CA fail', async (t) => {
  const hub = await startHub(t, ['--tls', 'auto']);
  const ready = hub.logs.find((l) => l.msg === 'hub ready');
  t.like(ready, { tls: true, url: `https://${hub.http}` });
  const url = `https://${hub.http}`;
  const ca = await readFile(hub.caFile, 'utf8');

  const ok = await exec('curl', ['-sS', '--fail', '--cacert', hub.caFile, `${url}/healthz`]);
  t.is(ok.code, 0, ok.stderr);
  t.like(JSON.parse(ok.stdout), { status: 'ok' });

  // The CA is public: served without a key, as PEM and as JSON, over HTTPS too.
  const pem = await exec('curl', ['-sS', '--fail', '--cacert', hub.caFile, `${url}/api/v1/ca`]);
  t.is(pem.stdout, ca);
  const json = await exec('curl', ['-sS', '--fail', '--cacert', hub.caFile, '-H', 'Accept: application/json', `${url}/api/v1/ca`]);
  t.like(JSON.parse(json.stdout), { certificate: ca });
  t.regex(JSON.parse(json.stdout).subject, /^CN=edgeml hub CA /);
  t.regex(JSON.parse(json.stdout).fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

  const plain = await exec('curl', ['-sS', `http://${hub.http}/healthz`]);
  t.not(plain.code, 0, 'plain HTTP to the TLS port fails');

  const verified = await exec('openssl', ['s_client', '-connect', hub.http, '-servername', 'localhost', '-CAfile', hub.caFile, '-verify_return_error'], { input: '' });
  t.is(verified.code, 0, verified.stderr);
  t.regex(verified.stdout, /Verify return code: 0 \(ok\)/);

  // A CA of another hub (DATA of a hub that never ran: `edgeml hub ca` makes one).
  const other = await tempDir(t, 'edgeml-other-ca-');
  const otherCa = await runCli(['hub', 'ca', '--data', other], cleanEnv());
  t.is(otherCa.code, 0, otherCa.stderr);
  const wrong = await exec('curl', ['-sS', '--cacert', join(other, 'ca', 'ca.crt'), `${url}/healthz`]);
  t.not(wrong.code, 0);
  const unverified = await exec('openssl', ['s_client', '-connect', hub.http, '-CAfile', join(other, 'ca', 'ca.crt'), '-verify_return_error'], { input: '' });
  t.not(unverified.code, 0);

  // `edgeml hub ca` over the running hub's DATA prints what the API serves.
  const printed = await runCli(['hub', 'ca', '--data', hub.data], cleanEnv());
  t.is(printed.code, 0, printed.stderr);
  t.is(printed.stdout, ca);
  const printedJson = await runCli(['hub', 'ca', '--data', hub.data, '--json'], cleanEnv());
  t.deepEqual(JSON.parse(printedJson.stdout), JSON.parse(json.stdout));
});

test('a hub on loopback speaks plain HTTP by default; --tls off is refused off loopback, naming --tls', async (t) => {
  const hub = await startHub(t);
  t.like(hub.logs.find((l) => l.msg === 'hub ready'), { tls: false, url: `http://${hub.http}` });
  const crl = await exec('curl', ['-sS', '--fail', `http://${hub.http}/api/v1/ca/crl`]);
  t.regex(crl.stdout, /^-----BEGIN X509 CRL-----/);

  const data = await tempDir(t, 'edgeml-hub-');
  const refused = spawnEdgeml(t, ['hub', 'start', '--data', data, '--http', '0.0.0.0:0', '--mqtt', '127.0.0.1:0', '--tls', 'off']);
  t.is(await refused.exited(), 2);
  t.regex(refused.rawOutput.join('\n'), /--tls off is allowed on a loopback address only/);
});
