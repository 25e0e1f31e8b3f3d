/**
 * `edgeml score` (cli/commands/score.ts): where the service key may be sent. Only to a device the
 * service targets and that reports it serving, and over plain http only to loopback unless allowed.
 * An https gateway must show a certificate from the hub's CA (--ca, else GET /api/v1/ca): run
 * through the real command against a FakeHub and a node:https gateway, the key reaches only that.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import type { CliIo } from '../../cli/commands/client-command.js';
import { checkServiceOnDevice, gatewayScoreUrl, serviceKeyOf } from '../../cli/commands/score.js';
import { buildProgram } from '../../cli/main.js';
import { signCsr } from '../helpers/gateway-tls.js';
import { makeCa, type ServerCert, type TestCa } from '../helpers/tls-certs.js';
import { generateKeyPair, privateKeyPem, SIGNING_ALGORITHM, x509 } from '../../shared/pki/x509.js';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import type { ReportedService } from '../../shared/protocol.js';

const IMAGE = `127.0.0.1:5000/edgeml/iris@sha256:${'1'.repeat(64)}`;
const AT = '2026-11-24T12:00:00.000Z';
const ACTOR = { keyId: 'aaaaaaaaaaaa', keyName: 'ops' };

function device(overrides: Partial<Device> = {}): Device {
  return {
    id: 'gw-1',
    status: 'online',
    labels: { site: 'lab' },
    offlineReason: null,
    onlineSince: AT,
    lastSeen: AT,
    facts: null,
    gateway: 'http://127.0.0.1:8090',
    enrolledAt: AT,
    enrolledBy: ACTOR,
    revokedAt: null,
    desiredGeneration: 1,
    observedGeneration: 1,
    phase: 'converged',
    services: [running()],
    ...overrides,
  };
}

function running(overrides: Partial<ReportedService> = {}): ReportedService {
  return { name: 'iris', revision: 1, image: IMAGE, phase: 'running', servingRevision: 1, progress: null, error: null, ...overrides };
}

const deployment = {
  service: 'iris',
  revision: 1,
  image: IMAGE,
  digest: `sha256:${'1'.repeat(64)}`,
  build: null,
  models: [],
  target: { site: 'lab' },
  limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null },
  scale: { minReplicas: 1, maxReplicas: 1, targetUtilization: 0.7, scaleUpWindow: '5s', scaleDownWindow: '60s' },
  capture: { rate: 0, maxBodyBytes: 16384, redact: [] },
  keyId: 'abcdefgh',
  stableRevision: 1,
  revisions: [{ revision: 1, image: IMAGE, digest: `sha256:${'1'.repeat(64)}`, build: null, models: [], limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null }, createdAt: AT }],
  rollout: { id: 1, kind: 'create', revision: 1, strategy: 'all-at-once', phase: 'succeeded', devices: ['gw-1'] },
  createdAt: AT,
  createdBy: ACTOR,
  updatedAt: AT,
  deletedAt: null,
  deletedBy: null,
} satisfies Deployment;

function refusal(t: ExecutionContext, code: ErrorCode, fn: () => unknown): string {
  const err = t.throws(fn, { instanceOf: EdgemlError });
  t.is(err?.code, code);
  return err?.message ?? '';
}

test('a targeted device that serves the service is scored', (t) => {
  t.notThrows(() => checkServiceOnDevice(device(), deployment));
  t.notThrows(() => checkServiceOnDevice(device({ services: [running({ revision: 2, phase: 'starting', servingRevision: 1 })] }), deployment), 'mid-rollout: the old revision serves');
});

test('refused: a device the service does not target, a revoked one, one that does not serve it', (t) => {
  const code = ErrorCodes.CLI_SERVICE_NOT_ON_DEVICE;
  // It reports iris running: what the device says does not make it a target.
  t.regex(refusal(t, code, () => checkServiceOnDevice(device({ labels: { site: 'field' } }), deployment)), /service iris does not target device gw-1 \(its selector site=lab does not match/);
  t.regex(refusal(t, code, () => checkServiceOnDevice(device({ status: 'revoked', revokedAt: AT }), deployment)), /device gw-1 is revoked/);
  t.regex(refusal(t, code, () => checkServiceOnDevice(device({ services: [] }), deployment)), /does not run service iris yet \(it has not reported iris\)/);
  t.regex(
    refusal(t, code, () => checkServiceOnDevice(device({ services: [running({ phase: 'pulling', servingRevision: null })] }), deployment)),
    /does not run service iris yet \(it reports iris pulling\)/,
  );
  t.regex(refusal(t, code, () => checkServiceOnDevice(device({ services: [running({ name: 'other' })] }), deployment)), /has not reported iris/);
});

test('the gateway: https anywhere, plain http on loopback, plain http elsewhere only when allowed', (t) => {
  const url = (gateway: string, allowInsecureHttp = false) => gatewayScoreUrl({ deviceId: 'gw-1', gateway, service: 'iris', allowInsecureHttp });
  for (const gateway of ['https://gw-1.example:8443', 'http://127.0.0.1:8090', 'http://127.9.8.7:8090', 'http://localhost:8090', 'http://[::1]:8090']) {
    t.is(url(gateway), `${gateway}/v1/services/iris/score`, gateway);
  }
  for (const gateway of ['http://192.0.2.10:8090', 'http://gw-1.example:8090', 'http://[2001:db8::1]:8090', 'http://127.0.0.1.example:8090']) {
    const message = refusal(t, ErrorCodes.CLI_GATEWAY_REFUSED, () => url(gateway));
    t.true(message.includes(`plain-http gateway (${gateway})`) && message.includes('--allow-insecure-http'), message);
    t.is(url(gateway, true), `${gateway}/v1/services/iris/score`, `${gateway} with --allow-insecure-http`);
  }
  t.regex(refusal(t, ErrorCodes.CLI_GATEWAY_REFUSED, () => url('http://a:b:c')), /not a URL: "http:\/\/a:b:c"/);
});

async function listening(t: ExecutionContext, server: ReturnType<typeof createServer>): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

const DAY = 86_400_000;

/** A gateway certificate as the hub issues it: CN=the device id, the names the device asked for. */
async function deviceCert(ca: TestCa, deviceId: string, names: { ip?: string[]; dns?: string[] }): Promise<ServerCert> {
  const keys = await generateKeyPair();
  const san = [...(names.ip ?? []).map((value) => ({ type: 'ip' as const, value })), ...(names.dns ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${deviceId}`,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension(san)],
  });
  const cert = await signCsr(ca, csr.toString('pem'), new Date(Date.now() - DAY), new Date(Date.now() + DAY));
  return { cert, key: privateKeyPem(keys.privateKey) };
}

/** An https gateway that records the keys it was sent. */
async function tlsGateway(t: ExecutionContext, cert: ServerCert): Promise<{ url: string; keys: (string | undefined)[] }> {
  const keys: (string | undefined)[] = [];
  const server = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    keys.push(req.headers.authorization);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"class":"setosa"}'));
  });
  return { url: `https://127.0.0.1:${await listening(t, server)}`, keys };
}

/** A hub answering the device (with `gateway`), the deployment, and its CA (404 when `ca` is null). */
async function fakeHub(t: ExecutionContext, gateway: string, ca: string | null): Promise<string> {
  const server = createServer((req, res) => {
    const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url === '/api/v1/devices/gw-1') return json(device({ gateway }));
    if (req.url === '/api/v1/deployments/iris') return json(deployment);
    if (req.url === '/api/v1/ca' && ca !== null) return res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(ca);
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'HUB_E_NOT_FOUND', message: `no route ${req.url}` } }));
  });
  return `http://127.0.0.1:${await listening(t, server)}`;
}

/** `edgeml score iris --device gw-1` through the real command; resolves to stdout, or rejects with its error. */
async function score(t: ExecutionContext, hub: string, extra: string[] = [], env: Record<string, string> = { EDGEML_SERVICE_KEY: 'ems_the-service-key' }): Promise<string> {
  return (await scoreIo(t, hub, extra, env)).stdout;
}

/** The same, keeping stderr apart. */
async function scoreIo(t: ExecutionContext, hub: string, extra: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-score-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const input = join(dir, 'input.json');
  await writeFile(input, '{"features":[[5.1,3.5,1.4,0.2]]}');
  const out = { stdout: '', stderr: '' };
  const sink = (name: keyof typeof out) => new Writable({ write: (chunk, _enc, done) => void ((out[name] += String(chunk)), done()) });
  const io = { env, stdout: sink('stdout'), stderr: sink('stderr'), cwd: dir, interruptSignal: () => new AbortController().signal } as unknown as CliIo;
  const program = buildProgram(io).configureOutput({ writeErr: () => undefined });
  await program.parseAsync(['node', 'edgeml', 'score', 'iris', '--device', 'gw-1', '--input', input, '--hub', hub, '--json', ...extra]);
  return out;
}

async function tempFile(t: ExecutionContext, pem: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-score-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'file'), pem);
  return join(dir, 'file');
}

test('an https gateway is verified against the hub CA the hub serves, or the one given with --ca', async (t) => {
  const ca = await makeCa('edgeml hub CA');
  const gateway = await tlsGateway(t, await deviceCert(ca, 'gw-1', { ip: ['127.0.0.1'] }));
  const hub = await fakeHub(t, gateway.url, ca.pem);
  t.deepEqual(JSON.parse(await score(t, hub)), { class: 'setosa' });
  t.deepEqual(JSON.parse(await score(t, hub, ['--ca', await tempFile(t, ca.pem)])), { class: 'setosa' });
  t.deepEqual(gateway.keys, ['Bearer ems_the-service-key', 'Bearer ems_the-service-key']);
});

test('an https gateway the CA does not vouch for, or not for its address, never gets the key', async (t) => {
  const ca = await makeCa('edgeml hub CA');
  const other = await makeCa('another CA');
  const foreign = await tlsGateway(t, await deviceCert(other, 'gw-1', { ip: ['127.0.0.1'] }));
  const viaHub = await t.throwsAsync(score(t, await fakeHub(t, foreign.url, ca.pem)), { instanceOf: EdgemlError });
  t.is(viaHub.code, ErrorCodes.CLI_TLS);
  t.is(viaHub.message, `cannot verify the gateway of gw-1's certificate at ${foreign.url}: unable to verify the first certificate; gateways show certificates from the hub's CA: pass the hub's CA with --ca FILE or EDGEML_CA (\`edgeml hub ca\` prints it)`);

  const good = await tlsGateway(t, await deviceCert(ca, 'gw-1', { ip: ['127.0.0.1'] }));
  const wrongCa = await t.throwsAsync(score(t, await fakeHub(t, good.url, ca.pem), ['--ca', await tempFile(t, other.pem)]), { instanceOf: EdgemlError });
  t.is(wrongCa.code, ErrorCodes.CLI_TLS, '--ca is the only CA trusted, even when the hub serves another');

  const misnamed = await tlsGateway(t, await deviceCert(ca, 'gw-1', { dns: ['gw-2.example'] }));
  const name = await t.throwsAsync(score(t, await fakeHub(t, misnamed.url, ca.pem)), { instanceOf: EdgemlError });
  t.is(name.code, ErrorCodes.CLI_TLS);
  t.regex(name.message, /^the gateway of gw-1's certificate at https:\/\/127\.0\.0\.1:\d+ is not for 127\.0\.0\.1 \(it names DNS:gw-2\.example\); the agent's --advertise-url/);

  const noCa = await t.throwsAsync(score(t, await fakeHub(t, good.url, null)), { instanceOf: EdgemlError });
  t.is(noCa.code, ErrorCodes.CLI_TLS);
  t.is(noCa.message, "the hub does not serve its CA at /api/v1/ca; pass the hub's CA with --ca FILE or EDGEML_CA (`edgeml hub ca` prints it)");
  t.deepEqual([...foreign.keys, ...good.keys, ...misnamed.keys], [], 'no key reached any gateway');
});

test("an https gateway showing another device's certificate from the same CA never gets the key", async (t) => {
  const ca = await makeCa('edgeml hub CA');
  // gw-2's certificate names the address gw-1 reported: the name check alone would pass.
  const impostor = await tlsGateway(t, await deviceCert(ca, 'gw-2', { ip: ['127.0.0.1'] }));
  const err = await t.throwsAsync(score(t, await fakeHub(t, impostor.url, ca.pem)), { instanceOf: EdgemlError });
  t.is(err.code, ErrorCodes.CLI_TLS);
  t.is(err.message, `the gateway of gw-1 at ${impostor.url} shows the certificate of device gw-2, not one of gw-1: another device may be answering at its address`);
  t.deepEqual(impostor.keys, []);

  const own = await tlsGateway(t, await deviceCert(ca, 'gw-1', { ip: ['127.0.0.1'] }));
  t.deepEqual(JSON.parse(await score(t, await fakeHub(t, own.url, ca.pem))), { class: 'setosa' });
  t.deepEqual(own.keys, ['Bearer ems_the-service-key']);
});

test('the service key: --key warns on stderr (stdout stays JSON); --key-file and EDGEML_SERVICE_KEY_FILE read a file', async (t) => {
  const ca = await makeCa('edgeml hub CA');
  const gateway = await tlsGateway(t, await deviceCert(ca, 'gw-1', { ip: ['127.0.0.1'] }));
  const hub = await fakeHub(t, gateway.url, ca.pem);
  const keyFile = await tempFile(t, '  ems_from-a-file\n');

  const flagged = await scoreIo(t, hub, ['--key', 'ems_from-the-flag'], {});
  t.deepEqual(JSON.parse(flagged.stdout), { class: 'setosa' });
  t.is(flagged.stderr, 'edgeml: warning: --key shows in the process list; prefer --key-file or EDGEML_SERVICE_KEY\n');
  const filed = await scoreIo(t, hub, ['--key-file', keyFile], {});
  t.is(filed.stderr, '');
  await score(t, hub, [], { EDGEML_SERVICE_KEY_FILE: keyFile });
  t.deepEqual(gateway.keys, ['Bearer ems_from-the-flag', 'Bearer ems_from-a-file', 'Bearer ems_from-a-file']);
});

test('serviceKeyOf: flags before the environment; both variables, an unreadable file or no key at all are refused without the key', (t) => {
  const stderr = { write: () => true } as unknown as CliIo['stderr'];
  const keyOf = (flags: { key?: string; keyFile?: string }, env: Record<string, string>) => () => serviceKeyOf(flags, { env, stderr });
  t.is(keyOf({}, { EDGEML_SERVICE_KEY: 'ems_env' })(), 'ems_env');
  t.is(keyOf({ key: 'ems_flag' }, { EDGEML_SERVICE_KEY: 'ems_env' })(), 'ems_flag');
  const both = refusal(t, ErrorCodes.CLI_INPUT_INVALID, keyOf({}, { EDGEML_SERVICE_KEY: 'ems_secret', EDGEML_SERVICE_KEY_FILE: '/nonexistent' }));
  t.is(both, 'both EDGEML_SERVICE_KEY and EDGEML_SERVICE_KEY_FILE are set: keep one');
  t.regex(refusal(t, ErrorCodes.CLI_INPUT_INVALID, keyOf({}, {})), /give the service key: --key-file FILE, EDGEML_SERVICE_KEY_FILE=FILE or EDGEML_SERVICE_KEY=/);
  t.regex(refusal(t, ErrorCodes.CLI_INPUT_INVALID, keyOf({ keyFile: '/nonexistent/key' }, {})), /--key-file \/nonexistent\/key/);
});
