/**
 * HTTPS for a device's gateway with a real hub, a real agent, Docker and the registry: the agent
 * gets its certificate from the hub's CA with no manual step, reports an https:// gateway, curl
 * scores through it trusting only the hub's CA, plain HTTP to the port fails, and a renewal (the hub
 * signs for 15 s, so the agent renews every 10 s) happens under a bounded load with no failed
 * request: keep-alive connections carry on, new connections get the new certificate.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Agent, Client, request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir, type LogLine } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { servedSerial } from '../helpers/gateway-tls.js';
import { deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const INSTALLED = 'gateway certificate installed';
/** The load's bounds: it ends once the renewal has been seen under it, or at these. */
const LOAD_MAX_MS = 60_000;
const LOAD_MAX_REQUESTS = 20_000;
const WORKERS = 4;

test('a real agent serves HTTPS with a certificate from the hub and renews it under load without a failed request', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry, '--device-cert-lifetime', '15s'], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  t.teardown(() => deleteFromRegistry(registry, `${prefix}/tls-iris`, 'v1').catch(() => undefined));
  const cli = cliFor(hub, hub.adminKey, LONG);
  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'tls-iris', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'tls-iris', '--platform', 'linux/amd64', '--json'));
  t.is(image.status, 'succeeded');
  const { sample } = JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8')) as { sample: unknown };

  const id = `tls-${randomBytes(3).toString('hex')}`;
  t.teardown(async () => {
    const ids = (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${id}`])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await exec('docker', ['rm', '-f', ...ids]);
  });
  const token = await enrollDevice(hub, id, { dev: id });
  const agentData = await tempDir(t, 'edgeml-agent-');
  const agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId: id, token, data: agentData, extraArgs: ['--platform', 'linux/amd64', '--gateway-tls', 'auto'] });
  const installs = () => agent.logs.filter((l) => l.msg === INSTALLED);
  const first = await agent.waitForLog('the first gateway certificate', (l) => l.msg === INSTALLED, 30_000);
  t.like(first, { purpose: 'gateway', source: 'hub' });
  t.deepEqual(first.names, ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']);

  const ca = await readFile(join(hub.data, 'ca', 'ca.crt'), 'utf8');
  // Stored once in use: key, certificate and CA in one file (one write: a crash never splits them), then the CA alone.
  await waitFor('the agent stored the CA that signed its certificate', async () => (await readFile(join(agentData, 'tls', 'ca.crt'), 'utf8').catch(() => '')) === ca, 10_000, 100);
  const stored = await readFile(join(agentData, 'tls', 'gateway.pem'), 'utf8');
  t.true(stored.includes('PRIVATE KEY') && stored.includes(ca.trim()));
  t.is((await stat(join(agentData, 'tls', 'gateway.pem'))).mode & 0o777, 0o600, 'the key is readable by its owner only');

  const { key } = jsonOf<DeploymentCreated>(t, await cli('deploy', 'tls-iris', '--build', String(image.id), '--target', `dev=${id}`, '--json'));
  const device = await waitFor(
    `${id} to serve tls-iris`,
    async () => {
      const d = await deviceOf(hub, id);
      return d.status === 'online' && d.services.find((s) => s.name === 'tls-iris')?.phase === 'running' ? d : undefined;
    },
    LONG,
    250,
  );

  // (1) The gateway the device reports is HTTPS.
  const gateway = (device as Device).gateway ?? '';
  t.regex(gateway, /^https:\/\/127\.0\.0\.1:\d+$/);
  const port = Number(new URL(gateway).port);
  const scoreUrl = `${gateway}/v1/services/tls-iris/score`;

  // (2) curl, trusting only the hub's CA, scores; the key goes in a header file, not in curl's arguments.
  const dir = await tempDir(t);
  await writeFile(join(dir, 'headers'), `Authorization: Bearer ${key}\ncontent-type: application/json\n`);
  await writeFile(join(dir, 'input.json'), JSON.stringify(sample));
  const curl = await exec('curl', ['-sS', '--fail-with-body', '--cacert', join(hub.data, 'ca', 'ca.crt'), '-H', `@${join(dir, 'headers')}`, '--data-binary', `@${join(dir, 'input.json')}`, scoreUrl], { timeoutMs: 30_000 });
  t.is(curl.code, 0, curl.stderr);
  t.truthy(JSON.parse(curl.stdout));
  const untrusted = await exec('curl', ['-sS', '-H', `@${join(dir, 'headers')}`, '--data-binary', `@${join(dir, 'input.json')}`, scoreUrl], { timeoutMs: 30_000 });
  t.not(untrusted.code, 0, 'without the hub CA, curl does not trust the gateway');
  await t.throwsAsync(request(scoreUrl.replace('https://', 'http://'), { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{}', headersTimeout: 10_000 }), undefined, 'plain HTTP to the TLS port fails');

  // (3) A bounded load over keep-alive connections, plus a new connection per worker every 10th request, across a renewal.
  const keepAlive = new Agent({ connect: { ca }, connections: WORKERS, keepAliveTimeout: 60_000 });
  t.teardown(() => keepAlive.close());
  const body = JSON.stringify(sample);
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  const outcomes: Array<{ status: number | null; error?: string }> = [];
  const before = await servedSerial('127.0.0.1', port, ca);
  const installsBefore = installs().length;
  const started = Date.now();
  let renewed: LogLine | undefined;
  let renewedAt = 0;
  const oneRequest = async (dispatcher: Agent | Client) => {
    try {
      const res = await request(scoreUrl, { method: 'POST', dispatcher, headers, body });
      await res.body.dump();
      outcomes.push({ status: res.statusCode });
    } catch (err) {
      outcomes.push({ status: null, error: (err as Error).message });
    }
  };
  const worker = async () => {
    for (let i = 0; ; i++) {
      // Until a renewal has happened under the load and a second more of traffic has followed it.
      renewed ??= installs().slice(installsBefore).find((l) => l.serial !== first.serial && l.serial !== undefined);
      if (renewed && !renewedAt) renewedAt = Date.now();
      if ((renewedAt && Date.now() - renewedAt > 1000) || Date.now() - started > LOAD_MAX_MS || outcomes.length >= LOAD_MAX_REQUESTS) return;
      if (i % 10 === 9) {
        const fresh = new Client(new URL(scoreUrl).origin, { connect: { ca } });
        await oneRequest(fresh);
        await fresh.close();
      } else {
        await oneRequest(keepAlive);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  const after = await servedSerial('127.0.0.1', port, ca);
  t.log(`${outcomes.length} requests in ${Date.now() - started} ms; served serial ${before} → ${after}`);

  t.truthy(renewed, `a renewal under the load (load ran ${Date.now() - started} ms, ${outcomes.length} requests; agent: ${agent.tail()})`);
  const failed = outcomes.filter((o) => o.status !== 200);
  t.true(outcomes.length > 100, `${outcomes.length} requests`);
  t.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${outcomes.length} requests failed`);
  t.not(after, before, 'new connections get the renewed certificate');
  // Another renewal may land between the load's end and this look: any certificate installed since will do.
  t.true(
    installs()
      .slice(installsBefore)
      .some((l) => String(l.serial).toLowerCase() === after.toLowerCase()),
    'the certificate served is one installed under the load or since',
  );
  t.false(agent.logs.some((l) => JSON.stringify(l).includes('PRIVATE KEY')), 'no private key in a log line');
});
