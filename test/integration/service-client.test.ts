/**
 * `edgeml service client` against a real hub, a real agent and its HTTPS gateway (a certificate from
 * the hub's CA, the default off loopback) with a real scoring container: the Python, JavaScript and
 * curl clients it prints score the sample and agree with each other; the Java one compiles (javac)
 * and scores too, the C# one compiles (mono's mcs) and fails closed on mono (see below). Each trusts the CA in EDGEML_SERVICE_CA (and nothing without it),
 * reads the key from the variable named, says a refusal in one line with a non-zero exit, and a
 * 429 (the only slot held by a slow request) is retried after its Retry-After until it succeeds.
 * On the same hub, `device enroll` prints the agent's command line with the broker's real address.
 *
 * The rig installs python3, default-jdk-headless, mono-mcs and libmono-system-net-http4.0-cil
 * (scripts/rig/setup.sh): a missing compiler fails this test rather than skipping it.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Agent, request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import { cleanEnv, cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const SERVICE = 'client-iris';
/** Holds the only slot over a few of the client's tries (Retry-After: 1), well within its 5 tries. */
const SLOW_RUN_MS = 3000;
const FILES = { python: 'client.py', javascript: 'client.mjs', java: 'EdgemlClient.java', csharp: 'EdgemlClient.cs', curl: 'client.sh' } as const;

interface Answer {
  class: string;
  scores: Record<string, number>;
}

test('the generated clients score through the HTTPS gateway, trust only the hub CA, and retry a 429', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  t.teardown(() => deleteFromRegistry(registry, `${prefix}/${SERVICE}`, 'v1').catch(() => undefined));
  const cli = cliFor(hub, hub.adminKey, LONG);

  // `device enroll` tells the broker address the hub really listens on (it was started on port 0).
  t.regex(hub.mqtt, /^127\.0\.0\.1:[1-9]\d*$/);
  const enrolled = await cli('device', 'enroll', 'enroll-check');
  t.is(enrolled.code, 0, enrolled.stderr);
  t.true(enrolled.stdout.includes(`\n  edgeml agent start --hub mqtt://${hub.mqtt} --device-id enroll-check\n`), enrolled.stdout);
  t.is(jsonOf<{ broker: string }>(t, await cli('device', 'enroll', 'enroll-check-2', '--json')).broker, `mqtt://${hub.mqtt}`);

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', SERVICE, '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--env', `FIXTURE_SLOW_RUN_MS=${SLOW_RUN_MS}`, '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', SERVICE, '--platform', 'linux/amd64', '--json'));
  t.is(image.status, 'succeeded');
  const { sample } = JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8')) as { sample: unknown };

  const id = `cli-${randomBytes(3).toString('hex')}`;
  const token = await enrollDevice(hub, id, { dev: id });
  await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId: id, token, extraArgs: ['--platform', 'linux/amd64', '--gateway-tls', 'auto'] });
  // One request at a time and no queue: a second one while a slow one runs is a 429.
  const { key } = jsonOf<DeploymentCreated>(t, await cli('deploy', SERVICE, '--build', String(image.id), '--target', `dev=${id}`, '--max-concurrent', '1', '--max-queue', '0', '--json'));
  const device = await waitFor(`${id} to serve ${SERVICE}`, async () => {
    const d = await deviceOf(hub, id);
    return d.status === 'online' && d.services.find((s) => s.name === SERVICE)?.servingRevision != null ? d : undefined;
  }, LONG, 250);
  const gateway = device.gateway ?? '';
  t.regex(gateway, /^https:\/\/127\.0\.0\.1:\d+$/, 'the gateway serves HTTPS by default');
  const scoreUrl = `${gateway}/v1/services/${SERVICE}/score`;

  const dir = await tempDir(t);
  const input = join(dir, 'input.json');
  await writeFile(input, JSON.stringify(sample));
  const written = async (lang: keyof typeof FILES, ...extra: string[]) => {
    const r = await cli('service', 'client', SERVICE, '--lang', lang, ...extra);
    t.is(r.code, 0, r.stderr);
    t.true(r.stdout.includes(scoreUrl), `${lang}: the gateway's score URL`);
    t.true(r.stdout.includes(`Sample input: ${JSON.stringify(sample)}`), `${lang}: the manifest's sample`);
    t.false(r.stdout.includes(key), 'the key is never written into a client');
    const file = join(dir, FILES[lang]);
    await writeFile(file, r.stdout);
    return file;
  };
  const env = (extra: NodeJS.ProcessEnv = {}) => ({ ...cleanEnv(), EDGEML_SERVICE_KEY: key, EDGEML_SERVICE_CA: hub.caFile, ...extra });
  const run = (cmd: string, args: string[], extra?: NodeJS.ProcessEnv, stdin?: string) =>
    exec(cmd, args, { env: env(extra), cwd: dir, timeoutMs: 60_000, ...(stdin === undefined ? {} : { input: stdin }) });
  const answerOf = (what: string, r: { code: number | null; stdout: string; stderr: string }): Answer => {
    t.is(r.code, 0, `${what}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Answer;
  };

  // Python (with --key-env), JavaScript (input on stdin) and curl score the sample alike.
  const python = await written('python', '--key-env', 'IRIS_KEY');
  const expected = answerOf('python', await run('python3', [python, input], { EDGEML_SERVICE_KEY: undefined, IRIS_KEY: key }));
  t.is(expected.class, 'setosa');
  const javascript = await written('javascript');
  t.deepEqual(answerOf('javascript', await run(process.execPath, [javascript, '-'], {}, JSON.stringify(sample))), expected);
  const curl = await written('curl');
  t.deepEqual(answerOf('curl', await run('sh', [curl, input])), expected);

  // Java: compiled, then run.
  const java = await written('java');
  const javac = await exec('javac', ['-d', join(dir, 'java'), java], { timeoutMs: 120_000 });
  t.is(javac.code, 0, `javac: ${javac.stderr}`);
  t.deepEqual(answerOf('java', await run('java', ['-cp', join(dir, 'java'), 'EdgemlClient', input])), expected);

  // C#: compiled with mono's mcs. Mono 6.8 (Debian bookworm) cannot build a chain over the hub's
  // ECDSA certificates (its managed X509Chain knows no EC keys), so on mono the client refuses the
  // gateway rather than trusting it unchecked; on .NET the same code verifies the chain.
  const csharp = await written('csharp');
  const exe = join(dir, 'EdgemlClient.exe');
  const mcs = await exec('mcs', ['-nologo', '-r:System.Net.Http.dll', `-out:${exe}`, csharp], { timeoutMs: 120_000 });
  t.is(mcs.code, 0, `mcs: ${mcs.stdout}${mcs.stderr}`);
  const mono = await run('mono', [exe, input]);
  t.is(mono.code, 1, 'mono fails closed');
  t.regex(mono.stderr, /^error: cannot reach https:\/\/.*: Cannot decode public key from unknown OID '1\.2\.840\.10045\.2\.1'\.\n$/);

  // Refusals are one line and a failure: a wrong key (401, not retried), no key, and no CA (the
  // gateway's certificate is from the hub's CA, which no default trust store holds).
  const oneLine = (what: string, r: { code: number | null; stderr: string }, pattern: RegExp) => {
    t.not(r.code, 0, what);
    t.is(r.stderr.trim().split('\n').length, 1, `${what}: one line: ${r.stderr}`);
    t.regex(r.stderr, pattern, what);
  };
  oneLine('wrong key', await run(process.execPath, [javascript, input], { EDGEML_SERVICE_KEY: `${key}x` }), /^error: .*answered 401: .*GATEWAY_E_UNAUTHENTICATED/);
  oneLine('no key', await run('sh', [curl, input], { EDGEML_SERVICE_KEY: undefined }), /^error: set EDGEML_SERVICE_KEY to the service key/);
  oneLine('no CA', await run('python3', [python, input], { EDGEML_SERVICE_CA: undefined, IRIS_KEY: key }), /^error: cannot reach .*CERTIFICATE_VERIFY_FAILED/i);
  oneLine('no CA', await run('sh', [curl, input], { EDGEML_SERVICE_CA: undefined }), /^error: cannot reach .*certificate/i);

  // 429 then success: a slow request holds the one slot; the client is refused, waits its
  // Retry-After, and gets its answer once the slot is free.
  const ca = await readFile(hub.caFile, 'utf8');
  const dispatcher = new Agent({ connect: { ca } });
  t.teardown(() => dispatcher.close());
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const gatewayService = async () => {
    const res = await request(`${gateway}/v1/services`, { dispatcher, headers });
    const { services } = (await res.body.json()) as { services: Array<{ name: string; inFlight: number; metrics: { rejected: number } }> };
    return services.find((s) => s.name === SERVICE)!;
  };
  const rejectedBefore = (await gatewayService()).metrics.rejected;
  const slow = request(scoreUrl, { method: 'POST', dispatcher, headers, body: JSON.stringify({ ...(sample as object), fixture: 'slow' }) });
  await waitFor('the slow request to hold the slot', async () => (await gatewayService()).inFlight === 1, 10_000);
  const retried = await run('python3', [python, input], { IRIS_KEY: key });
  t.deepEqual(answerOf('python after a 429', retried), expected);
  t.is((await slow).statusCode, 200);
  t.true((await gatewayService()).metrics.rejected > rejectedBefore, 'the client was refused (429) before it succeeded');
});
