/**
 * Signing devices' CSRs (hub/pki/issuer.ts) and answering them over MQTT
 * (hub/pki/certificate-requests.ts): the policy's refusals, what a signed certificate says, and that
 * it is stored before it is answered. A real CA in a temp directory, a fake repository and clock.
 */
import test from 'ava';
import { webcrypto, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ensureDataCa, type HubCa } from '../../hub/pki/ca.js';
import { certificateRequests } from '../../hub/pki/certificate-requests.js';
import { IssuedCertificates } from '../../hub/pki/issued-certificates.js';
import { CertificateIssuer, MAX_GATEWAY_NAMES, MAX_UNEXPIRED_PER_PURPOSE } from '../../hub/pki/issuer.js';
import type { DeviceRecord, DeviceRepository } from '../../hub/store/store.js';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import { generateKeyPair, SIGNING_ALGORITHM, x509, type CryptoKeyPair } from '../../shared/pki/x509.js';
import { decodeMessage } from '../../shared/protocol.js';
import { FakeClock } from '../helpers/fake-clock.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const LIFETIME_MS = 10_000;

let caPromise: Promise<HubCa> | undefined;
/** One CA for the whole file: making one is the slow part. */
function sharedCa(): Promise<HubCa> {
  caPromise ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgeml-issuer-'));
    const ca = await ensureDataCa(dir);
    await rm(dir, { recursive: true, force: true });
    return ca;
  })();
  return caPromise;
}

function record(id: string, revokedAt: string | null = null): DeviceRecord {
  return { id, labels: {}, tokenHash: 'x', enrolledAt: new Date(T0).toISOString(), enrolledBy: { keyId: 'k', keyName: 'n' }, revokedAt, observed: {} } as unknown as DeviceRecord;
}

class FakeDevices implements Pick<DeviceRepository, 'update'> {
  readonly records = new Map<string, DeviceRecord>();
  writes = 0;
  async update(id: string, change: (r: DeviceRecord) => void): Promise<DeviceRecord> {
    const r = this.records.get(id);
    if (!r) throw new EdgemlError(ErrorCodes.HUB_DEVICE_NOT_FOUND, `device ${id} not found`);
    const draft = structuredClone(r);
    change(draft);
    this.records.set(id, draft);
    this.writes++;
    return draft;
  }
}

async function setup(opts: { hubNames?: string[]; lifetimeMs?: number } = {}) {
  const ca = await sharedCa();
  const devices = new FakeDevices();
  devices.records.set('dev-1', record('dev-1'));
  devices.records.set('dev-2', record('dev-2'));
  devices.records.set('gone', record('gone', new Date(T0).toISOString()));
  const clock = new FakeClock(T0 + 400);
  const issued = new IssuedCertificates();
  const deps = {
    ca,
    devices,
    issued,
    isActive: (id: string) => devices.records.get(id)?.revokedAt === null,
    clock,
    lifetimeMs: opts.lifetimeMs ?? LIFETIME_MS,
    hubNames: () => opts.hubNames ?? ['hub.example', '10.0.0.1', 'localhost', '127.0.0.1'],
  };
  return { ca, devices, clock, issued, deps, issuer: new CertificateIssuer(deps) };
}

type Name = { type: 'dns' | 'ip'; value: string };
async function makeCsr(subject: string, names: Name[] = []): Promise<string> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return csr.toString('pem');
}
const dns = (value: string): Name => ({ type: 'dns', value });
const ip = (value: string): Name => ({ type: 'ip', value });

async function refusal(t: { throwsAsync: (p: Promise<unknown>) => Promise<unknown> }, p: Promise<unknown>): Promise<string> {
  const err = await t.throwsAsync(p);
  if (!isEdgemlError(err, ErrorCodes.HUB_CSR_REFUSED)) throw new Error(`expected a refusal, got ${String(err)}`);
  return err.message;
}

function extendedUsage(pem: string): string[] | undefined {
  const usages = new x509.X509Certificate(pem).getExtension(x509.ExtendedKeyUsageExtension)?.usages;
  return usages && Array.from(usages, String);
}

test('a gateway certificate: the CSR names, serverAuth, the configured lifetime, signed by the CA and stored before the answer', async (t) => {
  const { ca, devices, issuer } = await setup();
  const csr = await makeCsr('CN=anything', [dns('gw.Example'), ip('127.0.0.1'), dns('localhost'), ip('10.0.4.17')]);
  const issued = await issuer.issue('dev-1', { purpose: 'gateway', csr });
  const cert = new X509Certificate(issued.certificate);
  t.true(cert.verify(new X509Certificate(ca.certificatePem).publicKey), 'signed by the CA');
  t.true(cert.checkIssued(new X509Certificate(ca.certificatePem)));
  t.false(cert.ca);
  t.is(cert.subject, 'CN=dev-1');
  t.is(cert.subjectAltName, 'DNS:gw.example, IP Address:127.0.0.1, DNS:localhost, IP Address:10.0.4.17');
  t.deepEqual(extendedUsage(issued.certificate), [x509.ExtendedKeyUsage.serverAuth]);
  t.is(new Date(cert.validFrom).getTime(), T0, 'whole seconds');
  t.is(new Date(cert.validTo).getTime(), T0 + LIFETIME_MS);
  t.is(issued.notAfter.getTime(), T0 + LIFETIME_MS);
  t.is(cert.serialNumber, issued.serial);
  t.is(issued.serial.length, 32, '16 bytes');
  t.deepEqual(devices.records.get('dev-1')?.certificates, [
    { serial: issued.serial, purpose: 'gateway', names: ['gw.example', '127.0.0.1', 'localhost', '10.0.4.17'], notBefore: new Date(T0).toISOString(), notAfter: new Date(T0 + LIFETIME_MS).toISOString() },
  ]);
});

test('a client certificate: CN = the device id, clientAuth, no names', async (t) => {
  const { ca, issuer } = await setup();
  const issued = await issuer.issue('dev-1', { purpose: 'client', csr: await makeCsr('CN=dev-1') });
  const cert = new X509Certificate(issued.certificate);
  t.true(cert.verify(new X509Certificate(ca.certificatePem).publicKey));
  t.is(cert.subject, 'CN=dev-1');
  t.is(cert.subjectAltName, undefined);
  t.deepEqual(extendedUsage(issued.certificate), [x509.ExtendedKeyUsage.clientAuth]);
});

test('a client CSR for another id is refused', async (t) => {
  const { issuer, devices } = await setup();
  t.regex(await refusal(t, issuer.issue('dev-1', { purpose: 'client', csr: await makeCsr('CN=dev-2') })), /CN=dev-1/);
  t.regex(await refusal(t, issuer.issue('dev-1', { purpose: 'client', csr: await makeCsr('CN=dev-1, CN=dev-2') })), /CN=dev-1/);
  t.is(devices.writes, 0);
});

test('gateway refusals: no names, wildcards, too many names, the hub’s own non-loopback names, other name types', async (t) => {
  const { issuer, devices } = await setup();
  const gateway = async (names: Name[]) => refusal(t, issuer.issue('dev-1', { purpose: 'gateway', csr: await makeCsr('CN=dev-1', names) }));
  t.regex(await gateway([]), /subjectAltName/);
  t.regex(await gateway([dns('*.example')]), /wildcard/);
  t.regex(await gateway([dns('a.example'), dns('*')]), /wildcard/);
  const many = Array.from({ length: MAX_GATEWAY_NAMES + 1 }, (_, i) => dns(`n${i}.example`));
  t.regex(await gateway(many), new RegExp(`at most ${MAX_GATEWAY_NAMES}`));
  t.regex(await gateway([dns('HUB.example')]), /hub's own names/);
  t.regex(await gateway([ip('10.0.0.1')]), /hub's own names/);
  t.regex(await gateway([{ type: 'email', value: 'a@b.example' } as unknown as Name]), /DNS names and IP addresses only/);
  t.regex(await gateway([dns('bad_name.example')]), /not a DNS name/);
  t.is(devices.writes, 0, 'nothing stored for a refusal');
  // Exactly the maximum, with loopback names the hub has too, is fine.
  await t.notThrowsAsync(issuer.issue('dev-1', { purpose: 'gateway', csr: await makeCsr('CN=dev-1', [...many.slice(3), dns('localhost'), ip('127.0.0.1')]) }));
});

test('a CSR whose signature does not verify, or that is no CSR, is refused', async (t) => {
  const { issuer } = await setup();
  const pem = await makeCsr('CN=dev-1');
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 2] = der[der.length - 2]! ^ 0xff;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  t.regex(await refusal(t, issuer.issue('dev-1', { purpose: 'client', csr: tampered })), /signature does not verify|not a PEM/);
  t.regex(await refusal(t, issuer.issue('dev-1', { purpose: 'client', csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' })), /not a PEM PKCS #10/);
});

test('unknown and revoked devices are refused, also one revoked while its certificate was signed', async (t) => {
  const { issuer, devices } = await setup();
  const csr = await makeCsr('CN=dev-1');
  t.regex(await refusal(t, issuer.issue('nobody', { purpose: 'client', csr })), /not enrolled, or is revoked/);
  t.regex(await refusal(t, issuer.issue('gone', { purpose: 'client', csr: await makeCsr('CN=gone') })), /revoked/);
  const racing = new CertificateIssuer({ ...(issuer as unknown as { deps: ConstructorParameters<typeof CertificateIssuer>[0] }).deps, isActive: () => true });
  devices.records.set('dev-1', record('dev-1', new Date(T0).toISOString()));
  t.regex(await refusal(t, racing.issue('dev-1', { purpose: 'client', csr })), /is revoked/);
  t.is(devices.records.get('dev-1')?.certificates, undefined);
});

test('expired certificates are dropped from the record; a device holding too many unexpired ones of a purpose is refused before anything is signed', async (t) => {
  const { issuer, devices, clock, deps, ca } = await setup();
  await issuer.issue('dev-1', { purpose: 'client', csr: await makeCsr('CN=dev-1') });
  clock.ms += LIFETIME_MS + 1000;
  const csr = await makeCsr('CN=dev-1');
  for (let i = 0; i < MAX_UNEXPIRED_PER_PURPOSE; i++) await issuer.issue('dev-1', { purpose: 'client', csr });
  t.is(devices.records.get('dev-1')?.certificates?.length, MAX_UNEXPIRED_PER_PURPOSE, 'the expired one is gone');
  // A CA that cannot sign: a refusal that came after signing would be its error instead.
  const unsigning = new CertificateIssuer({ ...deps, ca: { ...ca, signingKey: {} as typeof ca.signingKey } });
  t.regex(await refusal(t, unsigning.issue('dev-1', { purpose: 'client', csr })), /8 unexpired client certificates already/);
  // The bound is per purpose: gateway certificates are counted apart.
  await t.notThrowsAsync(issuer.issue('dev-1', { purpose: 'gateway', csr: await makeCsr('CN=dev-1', [dns('gw.example')]) }));
});

test('a gateway name another active device holds in an unexpired certificate is refused, naming the name and the device; loopback names and private addresses are everyone’s', async (t) => {
  const { issuer, devices } = await setup();
  await issuer.issue('dev-1', { purpose: 'gateway', csr: await makeCsr('CN=dev-1', [dns('gw.example'), ip('203.0.113.17'), ip('10.0.4.17'), dns('localhost'), ip('::1')]) });
  const gateway = (names: Name[]) => makeCsr('CN=dev-2', names).then((csr) => issuer.issue('dev-2', { purpose: 'gateway', csr }));
  t.regex(await refusal(t, gateway([dns('other.example'), dns('GW.example')])), /gw\.example is in a gateway certificate of device dev-1/);
  t.regex(await refusal(t, gateway([ip('203.0.113.17')])), /203\.0\.113\.17 .*dev-1/);
  t.is(devices.records.get('dev-2')?.certificates, undefined);
  await t.notThrowsAsync(gateway([dns('localhost'), ip('127.0.0.1'), ip('::1'), ip('10.0.4.17'), dns('other.example')]), 'loopback names, private addresses (another site may use them) and free names');
  await t.notThrowsAsync(issuer.issue('dev-1', { purpose: 'gateway', csr: await makeCsr('CN=dev-1', [dns('gw.example')]) }), 'a renewal of its own name');
  // Free again once the holder is revoked, or its certificates expired.
  devices.records.set('dev-1', { ...devices.records.get('dev-1')!, revokedAt: new Date(T0).toISOString() });
  await t.notThrowsAsync(gateway([dns('gw.example')]));
  const later = await setup();
  await later.issuer.issue('dev-1', { purpose: 'gateway', csr: await makeCsr('CN=dev-1', [dns('gw.example')]) });
  later.clock.ms += LIFETIME_MS;
  await t.notThrowsAsync(later.issuer.issue('dev-2', { purpose: 'gateway', csr: await makeCsr('CN=dev-2', [dns('gw.example')]) }));
});

test('two devices asking for the same name at once: exactly one gets it (checked in the store write)', async (t) => {
  const { issuer, devices } = await setup();
  const [a, b] = await Promise.allSettled([
    makeCsr('CN=dev-1', [dns('shared.example')]).then((csr) => issuer.issue('dev-1', { purpose: 'gateway', csr })),
    makeCsr('CN=dev-2', [dns('shared.example')]).then((csr) => issuer.issue('dev-2', { purpose: 'gateway', csr })),
  ]);
  t.is([a, b].filter((r) => r.status === 'fulfilled').length, 1);
  const lost = [a, b].find((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.true(isEdgemlError(lost?.reason, ErrorCodes.HUB_CSR_REFUSED));
  t.is([devices.records.get('dev-1'), devices.records.get('dev-2')].filter((r) => r?.certificates?.length === 1).length, 1);
});

test('the hub’s names compare normalised: IPv6 in any spelling, DNS in any case, and a wildcard covers exactly one label', async (t) => {
  const { issuer } = await setup({ hubNames: ['*.hub.example', '2001:db8::1', 'Plain.Example'] });
  const gateway = (names: Name[]) => makeCsr('CN=dev-1', names).then((csr) => issuer.issue('dev-1', { purpose: 'gateway', csr }));
  t.regex(await refusal(t, gateway([ip('2001:0db8:0:0:0:0:0:1')])), /2001:db8::1 is one of the hub's own names/);
  t.regex(await refusal(t, gateway([dns('plain.EXAMPLE')])), /hub's own names/);
  t.regex(await refusal(t, gateway([dns('api.hub.example')])), /api\.hub\.example is one of the hub's own names \(\*\.hub\.example\)/);
  await t.notThrowsAsync(gateway([dns('a.b.hub.example'), dns('hub.example'), ip('2001:db8::2')]), 'two labels, the bare parent, another address');
});

test('keys: EC P-256/P-384 and RSA ≥ 2048 bits only; a CSR whose parts do not parse is a refusal', async (t) => {
  const { issuer } = await setup();
  type KeyParams = Parameters<typeof webcrypto.subtle.generateKey>[0];
  const csrWith = async (algorithm: object, signing: object, extensions: x509.Extension[] = []) => {
    const keys = (await webcrypto.subtle.generateKey(algorithm as KeyParams, true, ['sign', 'verify'])) as CryptoKeyPair;
    return (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=dev-1', keys, signingAlgorithm: signing as { name: string }, extensions })).toString('pem');
  };
  const rsa = (bits: number) => ({ name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' });
  await t.notThrowsAsync(issuer.issue('dev-1', { purpose: 'client', csr: await csrWith({ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' }) }));
  await t.notThrowsAsync(issuer.issue('dev-1', { purpose: 'client', csr: await csrWith(rsa(2048), rsa(2048)) }));
  t.regex(await refusal(t, issuer.issue('dev-1', { purpose: 'client', csr: await csrWith(rsa(1024), rsa(1024)) })), /RSA 1024 bits/);
  t.regex(await refusal(t, issuer.issue('dev-1', { purpose: 'client', csr: await csrWith({ name: 'ECDSA', namedCurve: 'P-521' }, { name: 'ECDSA', hash: 'SHA-512' }) })), /secp521r1/);
  // A subjectAltName whose value is not one: the CSR parses and verifies, its extension does not.
  const broken = await csrWith({ name: 'ECDSA', namedCurve: 'P-256' }, SIGNING_ALGORITHM, [new x509.Extension('2.5.29.17', false, new Uint8Array([0x04, 0x01, 0x00]))]);
  t.regex(await refusal(t, issuer.issue('dev-1', { purpose: 'gateway', csr: broken })), /malformed/);
});

test('no certificate outlives the CA', async (t) => {
  const { issuer, ca } = await setup({ lifetimeMs: 100 * 365 * 24 * 3600 * 1000 });
  const issued = await issuer.issue('dev-1', { purpose: 'client', csr: await makeCsr('CN=dev-1') });
  t.is(issued.notAfter.getTime(), ca.certificate.notAfter.getTime());
  t.is(new Date(new X509Certificate(issued.certificate).validTo).getTime(), ca.certificate.notAfter.getTime());
});

test('the csr handler answers on the device’s cert topic (QoS 1, not retained) with the CA, or with the refusal; one request in flight per device', async (t) => {
  const { ca, issuer } = await setup();
  const published: Array<{ topic: string; payload: Buffer; opts: unknown }> = [];
  const requests = certificateRequests({
    issuer,
    broker: { publish: async (topic, payload, opts) => void published.push({ topic, payload, opts }) },
    ca,
    logger: pino({ level: 'silent' }),
  });
  const csr = await makeCsr('CN=dev-1');
  requests.handle('dev-1', { v: 1, id: 'r1', purpose: 'client', csr });
  requests.handle('dev-1', { v: 1, id: 'r2', purpose: 'client', csr });
  requests.handle('gone', { v: 1, id: 'r3', purpose: 'client', csr });
  await requests.settled();
  t.is(published.length, 2, 'r2 came while r1 was in flight: ignored');
  const answers = published.map((p) => ({ topic: p.topic, opts: p.opts, message: decodeMessage('cert', p.payload) }));
  const ok = answers.find((a) => a.topic === 'edgeml/v1/dev/dev-1/cert');
  t.deepEqual(ok?.opts, { qos: 1, retain: false });
  if (!ok?.message.ok) return t.fail('no valid answer for dev-1');
  t.like(ok.message.value, { v: 1, id: 'r1', purpose: 'client', ca: ca.certificatePem });
  t.true(ok.message.value.certificate?.startsWith('-----BEGIN CERTIFICATE-----'));
  t.is(ok.message.value.notAfter, new Date(T0 + LIFETIME_MS).toISOString());
  const refused = answers.find((a) => a.topic === 'edgeml/v1/dev/gone/cert');
  if (!refused?.message.ok) return t.fail('no valid answer for gone');
  t.like(refused.message.value, { id: 'r3', error: { code: ErrorCodes.HUB_CSR_REFUSED } });
  t.is(refused.message.value.certificate, undefined);
  // The next request of dev-1, once r1 was answered, is taken.
  requests.handle('dev-1', { v: 1, id: 'r4', purpose: 'client', csr });
  await requests.settled();
  t.is(published.length, 3);
});
