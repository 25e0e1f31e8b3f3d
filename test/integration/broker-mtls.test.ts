/**
 * Mutual TLS at the hub's broker (`--mqtt-tls auto`): a device asks for a client certificate over
 * MQTT with its token (csr → cert), then connects with the certificate alone; once revoked, its
 * certificate is in the CRL and a new connection with it is closed before any CONNACK; a token-only
 * device still connects. Only a client certificate the hub recorded for the device is an MQTT
 * identity: not its gateway certificate, not one from another CA, not one the hub's CA key signed
 * that the hub never recorded.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { X509Certificate } from 'node:crypto';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub } from '../helpers/edgeml-process.js';
import { waitFor } from '../helpers/wait.js';
import { generateKeyPair, importPrivateKeyPem, privateKeyPem, SIGNING_ALGORITHM, x509, type CryptoKey } from '../../shared/pki/x509.js';
import { decodeMessage, encodeMessage, type CertificateAnswer } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';

/** Connects, resolving with the client once CONNACK came, or rejecting with why it closed first. */
function connect(url: string, opts: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** A clientAuth certificate CN=`cn` for `publicKey`, signed by `issuer` with `signingKey`. */
async function clientCertificate(cn: string, publicKey: CryptoKey, issuer: string, signingKey: CryptoKey): Promise<string> {
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '4A' + Buffer.from(cn).toString('hex').toUpperCase().padEnd(30, '0'),
    subject: `CN=${cn}`,
    issuer,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
    publicKey,
    signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  return cert.toString('pem');
}

test('a device gets a client certificate over MQTT, connects with it alone, and is refused at the handshake once revoked', async (t) => {
  const hub = await startHub(t, ['--mqtt-tls', 'auto']);
  t.like(hub.logs.find((l) => l.msg === 'hub ready'), { mqttTls: true });
  const ca = await readFile(hub.caFile, 'utf8');
  const cli = cliFor(hub);
  const { token } = jsonOf<{ token: string }>(t, await cli('device', 'enroll', 'mt-1', '--json'));
  const { token: otherToken } = jsonOf<{ token: string }>(t, await cli('device', 'enroll', 'mt-2', '--json'));
  const url = `mqtts://${hub.mqtt}`;
  const tls = { ca, servername: 'localhost' };

  // First contact with the token: ask for a client certificate.
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=mt-1', keys, signingAlgorithm: SIGNING_ALGORITHM });
  const withToken = await connect(url, { ...tls, clientId: 'mt-1', username: 'mt-1', password: token });
  t.teardown(() => void withToken.end(true));
  const answer = new Promise<CertificateAnswer>((resolve) => {
    withToken.on('message', (_topic, payload) => {
      const decoded = decodeMessage('cert', payload);
      if (decoded.ok) resolve(decoded.value);
    });
  });
  await withToken.subscribeAsync(deviceTopic('mt-1', 'cert'), { qos: 1 });
  await withToken.publishAsync(deviceTopic('mt-1', 'csr'), encodeMessage('csr', { v: 1, id: 'q1', purpose: 'client', csr: csr.toString('pem') }), { qos: 1 });
  const cert = await answer;
  t.is(cert.error, undefined, JSON.stringify(cert.error));
  t.is(cert.ca, ca);
  const certificate = cert.certificate!;
  const serial = new X509Certificate(certificate).serialNumber;
  await withToken.endAsync();
  const issued = (await fetch(`${hub.url}/api/v1/devices/mt-1/certificates`, { headers: { authorization: `Bearer ${hub.adminKey}` } }).then((r) => r.json())) as { certificates: Array<{ serial: string; purpose: string; names: string[] }> };
  t.like(issued.certificates, [{ serial, purpose: 'client', names: ['mt-1'] }]);

  const key = privateKeyPem(keys.privateKey);

  // The certificate alone, no password.
  const byCert = await connect(url, { ...tls, clientId: 'mt-1', cert: certificate, key });
  t.true(byCert.connected);
  // It cannot pose as another device.
  await t.throwsAsync(connect(url, { ...tls, clientId: 'mt-2', cert: certificate, key }));
  await byCert.endAsync();

  // Its gateway (serverAuth) certificate is no MQTT identity.
  const gatewayKeys = await generateKeyPair();
  const gatewayCsr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=mt-1',
    keys: gatewayKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'mt-1.devices.test' }])],
  });
  const again = await connect(url, { ...tls, clientId: 'mt-1', cert: certificate, key });
  const gatewayAnswer = new Promise<CertificateAnswer>((resolve) => {
    again.on('message', (_topic, payload) => {
      const decoded = decodeMessage('cert', payload);
      if (decoded.ok && decoded.value.id === 'q2') resolve(decoded.value);
    });
  });
  await again.subscribeAsync(deviceTopic('mt-1', 'cert'), { qos: 1 });
  await again.publishAsync(deviceTopic('mt-1', 'csr'), encodeMessage('csr', { v: 1, id: 'q2', purpose: 'gateway', csr: gatewayCsr.toString('pem') }), { qos: 1 });
  const gateway = await gatewayAnswer;
  t.is(gateway.error, undefined, JSON.stringify(gateway.error));
  await again.endAsync();
  await t.throwsAsync(connect(url, { ...tls, clientId: 'mt-1', cert: gateway.certificate!, key: privateKeyPem(gatewayKeys.privateKey) }), undefined, 'a gateway certificate');

  // A certificate from another CA, with the right CN.
  const otherCaKeys = await generateKeyPair();
  const otherCa = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Other CA',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    keys: otherCaKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
  });
  const foreign = await clientCertificate('mt-1', keys.publicKey, otherCa.subject, otherCaKeys.privateKey);
  await t.throwsAsync(connect(url, { ...tls, clientId: 'mt-1', cert: foreign, key }), undefined, 'another CA');

  // Signed with the hub's CA key, but never issued (so never recorded) by the hub.
  const caKey = await importPrivateKeyPem(await readFile(join(hub.data, 'ca', 'ca.key'), 'utf8'));
  const unrecorded = await clientCertificate('mt-1', keys.publicKey, new X509Certificate(ca).subject.replace(/\n/g, ', '), caKey);
  t.true(new X509Certificate(unrecorded).verify(new X509Certificate(ca).publicKey), 'a valid signature of the hub CA');
  await t.throwsAsync(connect(url, { ...tls, clientId: 'mt-1', cert: unrecorded, key }), undefined, 'a certificate the hub never recorded');
  await hub.waitForLog('the unrecorded certificate refused', (l) => l.msg === 'mqtt connection closed: client certificate refused' && /not a client certificate the hub issued to an active device/.test(String(l.reason)));

  t.is((await cli('device', 'revoke', 'mt-1')).code, 0);
  await waitFor('the CRL lists the revoked certificate', async () => {
    const crl = await fetch(`${hub.url}/api/v1/ca/crl`).then((r) => r.text());
    const parsed = new x509.X509Crl(crl.replace(/X509 CRL/g, 'CRL'));
    return parsed.entries.some((e) => e.serialNumber.toUpperCase() === serial);
  });
  await t.throwsAsync(connect(url, { ...tls, clientId: 'mt-1', cert: certificate, key }));
  await hub.waitForLog('the handshake refusal', (l) => l.msg === 'mqtt connection closed: client certificate refused' && /revoked/i.test(String(l.reason)));

  // A device with a token only is not affected.
  const tokenOnly = await connect(url, { ...tls, clientId: 'mt-2', username: 'mt-2', password: otherToken });
  t.true(tokenOnly.connected);
  await tokenOnly.endAsync();
});
