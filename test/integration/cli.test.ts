/**
 * The `edgeml` binary itself: version, help, and refusal of bad configuration before starting.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { EDGEML_BIN, tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';

const edgeml = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  exec(process.execPath, [EDGEML_BIN, ...args], { env: { ...process.env, ...env }, timeoutMs: 20_000 });

test('--version prints the package version', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const r = await edgeml(['--version']);
  t.is(r.code, 0);
  t.is(r.stdout.trim(), pkg.version);
});

test('--help lists the process commands and their flags', async (t) => {
  const top = await edgeml(['--help']);
  t.is(top.code, 0);
  t.regex(top.stdout, /hub\s/);
  t.regex(top.stdout, /agent\s/);
  const hub = await edgeml(['hub', 'start', '--help']);
  for (const flag of ['--data', '--http', '--mqtt', '--registry', '--config']) t.true(hub.stdout.includes(flag), flag);
  const agent = await edgeml(['agent', 'start', '--help']);
  for (const flag of ['--hub', '--device-id', '--token', '--data', '--gateway', '--platform', '--telemetry-interval']) t.true(agent.stdout.includes(flag), flag);
});

test('unknown commands and flags are usage errors (exit 2)', async (t) => {
  const r = await edgeml(['hub', 'strat']);
  t.is(r.code, 2);
  t.regex(r.stderr, /strat/);
  const f = await edgeml(['hub', 'start', '--htp', '127.0.0.1:0']);
  t.is(f.code, 2);
  t.regex(f.stderr, /--htp/);
});

test('bad configuration is refused before anything starts, naming the key and its source', async (t) => {
  const dir = await tempDir(t);
  const missing = await edgeml(['agent', 'start', '--data', dir]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /deviceId: is required.*--device-id.*EDGEML_AGENT_DEVICE_ID/);

  const badFlag = await edgeml(['hub', 'start', '--data', dir, '--http', 'localhost']);
  t.is(badFlag.code, 2);
  t.regex(badFlag.stderr, /http: must look like "127\.0\.0\.1:8080".*flag --http/);

  const typoEnv = await edgeml(['hub', 'start', '--data', dir], { EDGEML_HUB_MQQT: '127.0.0.1:0' });
  t.is(typoEnv.code, 2);
  t.regex(typoEnv.stderr, /EDGEML_HUB_MQQT.*did you mean EDGEML_HUB_MQTT/);

  const port = await edgeml(['hub', 'start', '--data', dir, '--http', '127.0.0.1:99999']);
  t.is(port.code, 2, 'an out-of-range port is a configuration error, not a hang');
  t.regex(port.stderr, /http: must look like/);

  const halfTls = await edgeml(['hub', 'start', '--data', dir, '--http', '127.0.0.1:0', '--mqtt', '127.0.0.1:0', '--mqtt-tls-key', join(dir, 'missing.key')]);
  t.is(halfTls.code, 2);
  t.regex(halfTls.stderr, /--mqtt-tls-cert and --mqtt-tls-key go together/);
  const missingCert = await edgeml(['hub', 'start', '--data', dir, '--http', '127.0.0.1:0', '--mqtt', '127.0.0.1:0', '--mqtt-tls-cert', join(dir, 'nope.crt'), '--mqtt-tls-key', join(dir, 'nope.key')]);
  t.is(missingCert.code, 2);
  t.regex(missingCert.stderr, /--mqtt-tls-cert .*nope\.crt: cannot read it \(ENOENT\)/);

  const secretUrl = await edgeml(['agent', 'start', '--device-id', 'd', '--data', dir, '--hub', 'mqtt://user:s3cret@127.0.0.1:1883']);
  t.is(secretUrl.code, 2);
  t.regex(secretUrl.stderr, /hub: must look like/);

  const file = join(dir, 'hub.json');
  await writeFile(file, JSON.stringify({ http: '127.0.0.1:0', registy: '127.0.0.1:5000' }));
  const typoFile = await edgeml(['hub', 'start', '--config', file]);
  t.is(typoFile.code, 2);
  t.regex(typoFile.stderr, /unknown key "registy".*did you mean "registry"/);
  t.regex(typoFile.stderr, /EDGEML_E_CONFIG_INVALID/);
});

test('a port already in use is a clear error, not a crash trace', async (t) => {
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const dir = await tempDir(t);
  const r = await edgeml(['hub', 'start', '--data', dir, '--http', '127.0.0.1:0', '--mqtt', `127.0.0.1:${port}`]);
  t.is(r.code, 1);
  t.regex(r.stderr, new RegExp(`mqtt broker cannot listen on 127\\.0\\.0\\.1:${port}.*EADDRINUSE.*HUB_E_LISTEN_FAILED`));
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace for a known error');

  const http = await edgeml(['hub', 'start', '--data', dir, '--http', `127.0.0.1:${port}`, '--mqtt', '127.0.0.1:0']);
  t.is(http.code, 1);
  t.regex(http.stderr, new RegExp(`http server cannot listen on 127\\.0\\.0\\.1:${port}.*HUB_E_LISTEN_FAILED`));
});
