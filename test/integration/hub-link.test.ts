/**
 * The agent's MQTT link against the hub's real aedes broker, in-process: reconnect with backoff
 * after the broker restarts, re-announce `online`, and resubscribe so commands reach it again;
 * credentials asked for before every connection (a token file, a client certificate over mqtts).
 */
import test from 'ava';
import { pino } from 'pino';
import { systemClock } from '../../shared/clock.js';
import type { BackoffPolicy } from '../../shared/backoff.js';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createCsr } from '../../agent/pki/csr.js';
import { deviceCertificates } from '../../agent/pki/device-certificates.js';
import { gatewayNames } from '../../agent/pki/names.js';
import { loadMaterial } from '../../agent/pki/tls-files.js';
import { generateKeyPair, privateKeyPem } from '../../shared/pki/x509.js';
import { makeTestCa, signCsr } from '../helpers/gateway-tls.js';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, type CertificateAnswer, type CertificateRequest, type CommandAck, type DesiredState, type StatusMessage } from '../../shared/protocol.js';
import type { BrokerAuth } from '../../hub/broker/auth.js';
import { linkCredentials, type CredentialsSource } from '../../agent/link/credentials.js';
import { deviceTopic } from '../../shared/topics.js';
import { openBrokerAuth } from '../helpers/open-broker-auth.js';
import { startBroker, type Broker } from '../../hub/broker/broker.js';
import { connectHubLink } from '../../agent/link/hub-link.js';
import { runCommand } from '../../agent/commands.js';
import { startAgent, startHub, tempDir } from '../helpers/edgeml-process.js';
import { enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });

function watch(broker: Broker, deviceId: string) {
  const statuses: StatusMessage[] = [];
  const acks: CommandAck[] = [];
  const ready = Promise.all([
    broker.subscribe(deviceTopic(deviceId, 'status'), (_t, p) => {
      const d = decodeMessage('status', p);
      if (d.ok) statuses.push(d.value);
    }),
    broker.subscribe(deviceTopic(deviceId, 'cmd/ack'), (_t, p) => {
      const d = decodeMessage('cmd/ack', p);
      if (d.ok) acks.push(d.value);
    }),
  ]);
  return { statuses, acks, ready };
}

interface LinkTestOptions {
  url?: string;
  onSubscribed?: () => void;
  backoff?: BackoffPolicy;
  desired?: (d: DesiredState) => Promise<void>;
  credentials?: CredentialsSource;
  certificate?: (answer: CertificateAnswer) => void;
}

/** An agent link to `broker` with test facts; `desired` hears desired states. */
function linkTo(broker: Broker, deviceId: string, opts: LinkTestOptions = {}) {
  return connectHubLink({
    url: opts.url ?? `mqtt://${broker.address}`,
    deviceId,
    logger,
    clock: systemClock,
    ...(opts.onSubscribed ? { onSubscribed: opts.onSubscribed } : {}),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    onlineStatus: async () => ({
      v: PROTOCOL_VERSION,
      state: 'online',
      since: new Date().toISOString(),
      facts: { hostname: 'h', platform: 'linux/amd64', arch: 'x64', os: { distro: 'd', release: 'r', kernel: 'k' }, cpus: 1, memoryBytes: 1, docker: null, agentVersion: 'test' },
    }),
    handlers: {
      desired: opts.desired ?? (async () => undefined),
      invalidDesired: () => undefined,
      certificate: opts.certificate ?? (() => undefined),
      command: async (cmd) => runCommand(cmd, { uptimeMs: () => 1, invalidMessages: () => 0, generation: () => null }),
    },
  });
}

const ping = (broker: Broker, deviceId: string, id: string) =>
  broker.publish(deviceTopic(deviceId, 'cmd'), Buffer.from(JSON.stringify({ v: 1, id, name: 'ping' })), { qos: 1, retain: false });

test('the link reconnects with backoff after a broker restart and serves commands again', async (t) => {
  let broker = await startBroker({ listen: { host: '127.0.0.1', port: 0 }, auth: openBrokerAuth, logger });
  t.teardown(() => broker.close());
  const port = Number(broker.address.split(':').pop());
  const deviceId = 'link-1';
  let seen = watch(broker, deviceId);
  await seen.ready;

  const link = linkTo(broker, deviceId, { backoff: { initialMs: 50, maxMs: 400, factor: 2 } });
  t.teardown(() => link.close());

  await waitFor('first online status', () => seen.statuses.some((s) => s.state === 'online'));
  await ping(broker, deviceId, 'before');
  await waitFor('ack before restart', () => seen.acks.some((a) => a.id === 'before'));

  await broker.close();
  await waitFor('link notices the broker is gone', () => !link.connected());
  broker = await startBroker({ listen: { host: '127.0.0.1', port }, auth: openBrokerAuth, logger });
  seen = watch(broker, deviceId);
  await seen.ready;

  // The new broker has no session for the device: the link must announce itself and resubscribe.
  await waitFor('online status after reconnect', () => seen.statuses.some((s) => s.state === 'online'), 10_000);
  t.true(link.connected());
  await waitFor('ack after restart', async () => {
    await ping(broker, deviceId, 'after');
    await new Promise((r) => setTimeout(r, 100));
    return seen.acks.some((a) => a.id === 'after');
  });

  await link.close();
  const offline = await waitFor('clean offline on close', () => seen.statuses.find((s) => s.state === 'offline'));
  t.deepEqual(offline, { v: 1, state: 'offline', reason: 'shutdown' });
  t.false(link.connected());
});

test('reconnect attempts are scheduled only through the clock, with growing capped delays', async (t) => {
  // A port nothing listens on: every attempt is refused at once.
  const { createServer } = await import('node:net');
  const placeholder = createServer();
  await new Promise<void>((r) => placeholder.listen(0, '127.0.0.1', r));
  const port = (placeholder.address() as { port: number }).port;
  await new Promise<void>((r) => placeholder.close(() => r()));

  const scheduled: Array<{ ms: number; fn: () => void }> = [];
  const fakeClock = {
    now: () => Date.now(),
    setTimeout: (fn: () => void, ms: number) => {
      const entry = { ms, fn };
      scheduled.push(entry);
      return entry;
    },
    clearTimeout: () => undefined,
  };
  const policy = { initialMs: 100, maxMs: 800, factor: 2 };
  const link = connectHubLink({
    url: `mqtt://127.0.0.1:${port}`,
    deviceId: 'backoff-1',
    logger,
    clock: fakeClock,
    backoff: policy,
    onlineStatus: async () => {
      throw new Error('never connects');
    },
    handlers: { desired: async () => undefined, invalidDesired: () => undefined, command: async () => ({ v: 1, id: 'x', ok: false }), certificate: () => undefined },
  });
  t.teardown(() => link.close());

  for (let attempt = 0; attempt < 6; attempt++) {
    await waitFor(`retry ${attempt} scheduled`, () => scheduled.length === attempt + 1);
    // Nothing else retries behind the clock's back (mqtt.js' own reconnect is off).
    await new Promise((r) => setTimeout(r, 150));
    t.is(scheduled.length, attempt + 1);
    const { ms } = scheduled[attempt]!;
    const ceiling = Math.min(policy.maxMs, policy.initialMs * policy.factor ** attempt);
    t.true(ms >= policy.initialMs / 2 && ms <= ceiling, `attempt ${attempt}: ${ms} ms not in [${policy.initialMs / 2}, ${ceiling}]`);
    scheduled[attempt]!.fn();
  }
  t.false(link.connected());
});

test('a link whose session the broker kept still gets the retained desired state (an agent that lost its data)', async (t) => {
  const broker = await startBroker({ listen: { host: '127.0.0.1', port: 0 }, auth: openBrokerAuth, logger });
  t.teardown(() => broker.close());
  const deviceId = 'link-3';
  await broker.publish(deviceTopic(deviceId, 'desired'), Buffer.from(JSON.stringify({ v: 1, generation: 4, services: [] })), { qos: 1, retain: true });
  const open = (received: number[]) => linkTo(broker, deviceId, { desired: async (d) => void received.push(d.generation) });
  const first: number[] = [];
  const link = open(first);
  await waitFor('the first link to get the desired state', () => first.length === 1);
  await link.close();

  // Same client id, persistent session: the broker answers "session present".
  const second: number[] = [];
  const again = open(second);
  t.teardown(() => again.close());
  await waitFor('the second link to get it too', () => second.length === 1, 10_000);
  t.deepEqual(second, [4]);
});

/** Accepts only `deviceId` with the password `accepted()` says now; records every CONNECT's password. */
function tokenAuth(accepted: () => string, seen: string[]): BrokerAuth {
  return {
    ...openBrokerAuth,
    authenticate: async (clientId, username, password) => {
      seen.push(password?.toString('utf8') ?? '');
      return username === clientId && password?.toString('utf8') === accepted() ? { deviceId: clientId } : null;
    },
  };
}

test('the token file is read again before every connection: a rotated token is used without a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-link-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'first-token\n');
  let accepted = 'first-token';
  const seen: string[] = [];
  let broker = await startBroker({ listen: { host: '127.0.0.1', port: 0 }, auth: tokenAuth(() => accepted, seen), logger });
  t.teardown(() => broker.close());
  const port = Number(broker.address.split(':').pop());
  const deviceId = 'token-file-1';
  const credentials = linkCredentials({
    deviceId,
    auth: 'token',
    tokenFile,
    storedCa: async () => undefined,
    clientCertificate: () => null,
    readFile: (path) => readFile(path, 'utf8'),
    logger,
  });
  const link = linkTo(broker, deviceId, { backoff: { initialMs: 50, maxMs: 200, factor: 2 }, credentials: credentials.next });
  t.teardown(() => link.close());
  await waitFor('connected with the first token', () => link.connected());
  t.deepEqual(seen, ['first-token']);

  // The hub rotated the token; the operator puts the new one in the file; the broker restarts.
  accepted = 'second-token';
  await writeFile(tokenFile, 'second-token\n');
  await broker.close();
  await waitFor('the link notices', () => !link.connected());
  broker = await startBroker({ listen: { host: '127.0.0.1', port }, auth: tokenAuth(() => accepted, seen), logger });
  await waitFor('connected again with the second token', () => link.connected(), 10_000);
  t.is(seen.at(-1), 'second-token');
  t.false(seen.includes('second-token\n'), 'the token is trimmed');
});

test('the link publishes csr, hands cert answers to its handler, and reconnect() connects again with fresh credentials', async (t) => {
  const seen: string[] = [];
  let accepted = 'one';
  const broker = await startBroker({ listen: { host: '127.0.0.1', port: 0 }, auth: tokenAuth(() => accepted, seen), logger });
  t.teardown(() => broker.close());
  const deviceId = 'csr-1';
  const requests: CertificateRequest[] = [];
  await broker.subscribe(deviceTopic(deviceId, 'csr'), (_t, p) => {
    const d = decodeMessage('csr', p);
    if (d.ok) requests.push(d.value);
  });
  const answers: CertificateAnswer[] = [];
  let password = 'one';
  const link = linkTo(broker, deviceId, {
    credentials: async () => ({ username: deviceId, password }),
    certificate: (a) => answers.push(a),
  });
  t.teardown(() => link.close());
  await waitFor('connected', () => link.connected());

  const csr = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n';
  await link.publish('csr', { v: 1, id: 'r-1', purpose: 'gateway', csr });
  await waitFor('the hub side gets the csr', () => requests.length === 1);
  t.deepEqual(requests[0], { v: 1, id: 'r-1', purpose: 'gateway', csr });
  const answer: CertificateAnswer = { v: 1, id: 'r-1', purpose: 'gateway', error: { code: 'HUB_E_CSR_REFUSED', message: 'test' } };
  // Answers are not retained: one published once the subscriptions are in place arrives.
  await waitFor('subscribed', () => link.subscribed());
  await broker.publish(deviceTopic(deviceId, 'cert'), encodeMessage('cert', answer), { qos: 1, retain: false });
  await waitFor('the answer reaches the handler', () => answers.length > 0);
  t.deepEqual(answers[0], answer);

  accepted = 'two';
  password = 'two';
  link.reconnect();
  await waitFor('a second connection with the new password', () => seen.at(-1) === 'two' && link.connected(), 10_000);
  t.deepEqual(seen, ['one', 'two']);
});

/**
 * An mqtts:// front for `brokerPort` that asks for client certificates from `ca` and records what
 * each connection showed; the broker behind it trusts the front's word (a CONNECT without user name
 * is the certificate's device), as a broker that checks certificates itself would. While `refuse()`,
 * a connection with a certificate is closed right after the handshake, as the hub's broker does.
 */
async function mutualTlsFront(t: import('ava').ExecutionContext, brokerPort: number, ca: Awaited<ReturnType<typeof makeTestCa>>, refuse: () => boolean) {
  const keys = await generateKeyPair();
  const csr = await createCsr('gateway', keys, { commonName: 'broker', names: gatewayNames({ host: '127.0.0.1', interfaces: {} }) });
  const now = Date.now();
  /** Per connection: the certificate's CN, null without one, `refused`. */
  const shown: Array<string | null> = [];
  const server = createTlsServer({ key: privateKeyPem(keys.privateKey), cert: await signCsr(ca, csr, new Date(now - 60_000), new Date(now + 3600_000)), ca: ca.pem, requestCert: true, rejectUnauthorized: false }, (socket: TLSSocket) => {
    const peer = socket.getPeerCertificate();
    const cn = socket.authorized && peer.subject ? String(peer.subject.CN) : null;
    shown.push(cn !== null && refuse() ? 'refused' : cn);
    if (cn !== null && refuse()) return void socket.destroy();
    const upstream = netConnect(brokerPort, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as { port: number }).port, shown };
}

test('auth cert: first contact with the token asks for a client certificate and reconnects with it; a refused certificate falls back to the token', async (t) => {
  const deviceId = 'mtls-1';
  const token = 'the-device-token';
  const ca = await makeTestCa(new Date(Date.now() - 3600_000));
  /** Each CONNECT that got past the front: with the token, or with the certificate (no user name). */
  const connects: Array<'token' | 'certificate' | 'refused'> = [];
  let refuseCertificates = false;
  const auth: BrokerAuth = {
    ...openBrokerAuth,
    authenticate: async (clientId, username, password) => {
      const kind = username === undefined ? 'certificate' : password?.toString('utf8') === token && username === clientId ? 'token' : 'refused';
      connects.push(kind);
      return kind === 'refused' ? null : { deviceId: clientId };
    },
  };
  const broker = await startBroker({ listen: { host: '127.0.0.1', port: 0 }, auth, logger });
  t.teardown(() => broker.close());
  const front = await mutualTlsFront(t, Number(broker.address.split(':').pop()), ca, () => refuseCertificates);

  // The hub's side of csr → cert, signing with the test CA.
  const issued: string[] = [];
  await broker.subscribe(deviceTopic(deviceId, 'csr'), (_t, payload) => {
    const d = decodeMessage('csr', payload);
    if (!d.ok) return;
    void (async () => {
      const now = Date.now();
      const certificate = await signCsr(ca, d.value.csr, new Date(now - 60_000), new Date(now + 3600_000));
      issued.push(new X509Certificate(certificate).serialNumber);
      await broker.publish(deviceTopic(deviceId, 'cert'), encodeMessage('cert', { v: 1, id: d.value.id, purpose: d.value.purpose, certificate, ca: ca.pem }), { qos: 1, retain: false });
    })();
  });

  const dir = await mkdtemp(join(tmpdir(), 'edgeml-link-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const certificates = await deviceCertificates({
    deviceId,
    dir,
    login: { auth: 'cert', token, hubCa: Buffer.from(ca.pem), readFile: (path) => readFile(path, 'utf8') },
    link: () => link,
    clock: systemClock,
    logger,
  });
  const link = linkTo(broker, deviceId, {
    url: `mqtts://127.0.0.1:${front.port}`,
    backoff: { initialMs: 50, maxMs: 200, factor: 2 },
    credentials: certificates.credentials,
    certificate: (answer) => certificates.answer(answer),
    onSubscribed: () => certificates.subscribed(),
  });
  t.teardown(async () => {
    await certificates.close();
    await link.close();
  });
  const stored = async () => (await loadMaterial(dir, 'client', Date.now(), logger))?.serial;

  await waitFor('a connection with the client certificate', () => connects.includes('certificate') && link.connected(), 10_000)
  t.deepEqual(connects.slice(0, 2), ['token', 'certificate'], 'the token first, then the certificate');
  t.is(front.shown[0], null, 'no certificate on first contact');
  t.is(front.shown.at(-1), deviceId, 'the certificate names the device');
  t.is(issued.length, 1);
  t.is(await stored(), issued[0], 'stored in DATA/tls');

  // The broker stops taking the certificate (a revoked one): the link falls back to the token and asks for a new certificate.
  refuseCertificates = true;
  const before = connects.length;
  const shownBefore = front.shown.length;
  broker.disconnect(deviceId);
  // Twice closed right after the handshake: once could be a hub restarting.
  await waitFor('a refused certificate, twice, then the token', () => front.shown.slice(shownBefore).join(',').startsWith('refused,refused,') && connects.slice(before).includes('token'), 10_000);
  await waitFor('a new certificate asked for', () => issued.length >= 2, 10_000);
  refuseCertificates = false;
  await waitFor('the new certificate in use', async () => connects.at(-1) === 'certificate' && link.connected() && front.shown.at(-1) === deviceId && (await stored()) === issued.at(-1), 10_000);
});

test('a real agent with --auth cert against a real hub with MQTT TLS: the token once, then the client certificate alone', async (t) => {
  const hub = await startHub(t, ['--mqtt-tls', 'auto']);
  const id = 'mtls-agent-1';
  const token = await enrollDevice(hub, id);
  const data = await tempDir(t, 'edgeml-agent-');
  const args = { mqttUrl: `mqtts://${hub.mqtt}`, deviceId: id, data, extraArgs: ['--auth', 'cert', '--hub-ca', join(hub.data, 'ca', 'ca.crt')] };
  const first = await startAgent(t, { ...args, token });
  const installed = await first.waitForLog('the client certificate', (l) => l.msg === 'client certificate installed', 30_000);
  await first.waitForLog('a second connection, with the certificate', (l) => l.msg === 'connected to hub' && first.logs.indexOf(l) > first.logs.indexOf(installed));
  const stored = new X509Certificate((await loadMaterial(join(data, 'tls'), 'client', Date.now(), logger))?.certificate ?? '');
  t.is(stored.serialNumber, String(installed.serial));
  t.regex(stored.subject, new RegExp(`CN=${id}`));
  await first.kill('SIGTERM');

  // No token at all now: the stored certificate is the device's identity.
  const second = await startAgent(t, args);
  t.like(second.logs.find((l) => l.msg === 'client certificate installed'), { source: 'stored', serial: installed.serial });
  t.false(second.logs.some((l) => l.level === 'error'), second.tail());
});
