/**
 * Mutual TLS at the hub's broker (`--mqtt-tls auto`): a device asks for a client certificate over
 * MQTT with its token (csr → cert), then connects with the certificate alone; once revoked, its
 * certificate is in the CRL and a new connection with it is closed before any CONNACK; a token-only
 * device still connects.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { X509Certificate } from 'node:crypto';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub } from '../helpers/edgeml-process.js';
import { waitFor } from '../helpers/wait.js';
import { generateKeyPair, privateKeyPem, SIGNING_ALGORITHM, x509 } from '../../shared/pki/x509.js';
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

  t.is((await cli('device', 'revoke', 'mt-1')).code, 0);
  await waitFor('the CRL lists the revoked certificate', async () => {
    const crl = await fetch(`${hub.url}/api/v1/ca/crl`).then((r) => r.text());
    const parsed = new x509.X509Crl(crl.replace(/X509 CRL/g, 'CRL'));
    return parsed.entries.some((e) => e.serialNumber.toUpperCase() === serial);
  });
  const refused = await t.throwsAsync(connect(url, { ...tls, clientId: 'mt-1', cert: certificate, key }));
  t.truthy(refused);
  await hub.waitForLog('the handshake refusal', (l) => l.msg === 'mqtt connection closed: client certificate refused' && /revoked/i.test(String(l.reason)));

  // A device with a token only is not affected.
  const tokenOnly = await connect(url, { ...tls, clientId: 'mt-2', username: 'mt-2', password: otherToken });
  t.true(tokenOnly.connected);
  await tokenOnly.endAsync();
});
