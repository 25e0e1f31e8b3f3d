/**
 * The revocation list (hub/pki/revocation.ts): the unexpired certificates of revoked devices, signed
 * by the CA, in the PEM label OpenSSL reads; rebuilt from the store as it is at each rebuild.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDataCa } from '../../hub/pki/ca.js';
import { checkStoredDevice } from '../../hub/fleet/device-record-check.js';
import { IssuedCertificates } from '../../hub/pki/issued-certificates.js';
import { CRL_VALIDITY_MS, RevocationList, revokedCertificates } from '../../hub/pki/revocation.js';
import type { DeviceRecord, IssuedCertificate } from '../../hub/store/store.js';
import { x509 } from '../../shared/pki/x509.js';
import { FakeClock } from '../helpers/fake-clock.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const cert = (serial: string, notAfter: number): IssuedCertificate => ({ serial, purpose: 'client', names: ['x'], notBefore: iso(T0 - 1000), notAfter: iso(notAfter) });
const device = (id: string, revokedAt: string | null, certificates: IssuedCertificate[]) => ({ id, revokedAt, certificates }) as unknown as DeviceRecord;

test('lists the unexpired certificates of revoked devices only', (t) => {
  const devices = [
    device('live', null, [cert('AA', T0 + 5000)]),
    device('gone', iso(T0 - 10), [cert('BB', T0 + 5000), cert('CC', T0 - 1)]),
    device('old', iso(T0 - 10), []),
  ];
  t.deepEqual(revokedCertificates(devices, T0), [{ serial: 'BB', revokedAt: iso(T0 - 10) }]);
});

test('the CRL is signed by the CA, lists the serials, is valid a week, and openssl reads it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-crl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ca = await ensureDataCa(dir);
  const records = [device('gone', iso(T0 - 10), [cert('4A0102030405060708090A0B0C0D0E0F', T0 + 5000)])];
  const heard: string[] = [];
  const list = await RevocationList.open({ ca, devices: { list: async () => records }, clock: new FakeClock(T0) });
  list.onChange((pem) => heard.push(pem));
  const pem = list.pem();
  t.true(pem.startsWith('-----BEGIN X509 CRL-----'));
  const crl = new x509.X509Crl(pem.replace(/X509 CRL/g, 'CRL'));
  t.true(await crl.verify({ publicKey: ca.certificate.publicKey }));
  t.deepEqual(crl.entries.map((e) => e.serialNumber.toUpperCase()), ['4A0102030405060708090A0B0C0D0E0F']);
  t.is(crl.nextUpdate?.getTime(), T0 + CRL_VALIDITY_MS);
  const file = join(dir, 'crl.pem');
  await writeFile(file, pem);
  await writeFile(join(dir, 'ca.pem'), ca.certificatePem);
  const text = execFileSync('openssl', ['crl', '-in', file, '-noout', '-text', '-CAfile', join(dir, 'ca.pem')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.regex(text, /Serial Number: 4A0102030405060708090A0B0C0D0E0F/);

  records.push(device('also', iso(T0), [cert('5B0102030405060708090A0B0C0D0E0F', T0 + 5000)]));
  await list.rebuild();
  t.is(heard.length, 1);
  t.is(new x509.X509Crl(list.pem().replace(/X509 CRL/g, 'CRL')).entries.length, 2);
});

test('damaged stored certificate entries are left out of the CRL, and dropped from the device with a reason, never failing either', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-crl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ca = await ensureDataCa(dir);
  const good = cert('4A0102030405060708090A0B0C0D0E0F', T0 + 5000);
  const damaged = [{ ...good, serial: 'not hex' }, { ...good, purpose: 'server' }, { ...good, names: 'x' }, { serial: 'AB' }, null] as unknown as IssuedCertificate[];
  const gone = device('gone', iso(T0 - 10), [...damaged, good]);
  t.deepEqual(revokedCertificates([gone], T0), [{ serial: good.serial, revokedAt: iso(T0 - 10) }]);
  const list = await RevocationList.open({ ca, devices: { list: async () => [gone] }, clock: new FakeClock(T0) });
  t.is(new x509.X509Crl(list.pem().replace(/X509 CRL/g, 'CRL')).entries.length, 1);

  const stored = {
    id: 'gone',
    labels: {},
    tokenHash: 'a'.repeat(64),
    enrolledAt: iso(T0),
    enrolledBy: { keyId: 'k', keyName: 'admin' },
    revokedAt: null,
    observed: { status: null, offlineReason: null, onlineSince: null, lastSeen: null, facts: null },
    certificates: [...damaged, good],
  };
  const checked = checkStoredDevice(stored);
  if (!checked.ok) return t.fail(checked.error);
  t.deepEqual(checked.record.certificates, [good]);
  t.is(checked.certificatesDropped.length, damaged.length);
  t.regex(checked.certificatesDropped[0]!, /^certificates\[0\]: .*serial/);
  t.is(checked.observationReset, null);
  const notAList = checkStoredDevice({ ...stored, certificates: 'x' });
  t.true(notAList.ok && notAList.certificatesDropped.length === 1 && notAList.record.certificates?.length === 0);
});

test('the index of issued certificates: a client serial names its device while unexpired; gateway certificates are no client identity', (t) => {
  const index = IssuedCertificates.fromDevices([
    { id: 'dev-1', certificates: [cert('4A01', T0 + 5000), { ...cert('4A02', T0 + 5000), purpose: 'gateway', names: ['gw.example', '203.0.113.7', '192.168.1.20', 'fd00::20'] }] },
    { id: 'dev-2', certificates: [cert('4A03', T0 - 1)] },
  ]);
  t.is(index.clientDevice('4a01', T0), 'dev-1', 'any case');
  t.is(index.clientDevice('004A01', T0), 'dev-1', 'leading zeros');
  t.is(index.clientDevice('4A02', T0), undefined, 'a gateway certificate');
  t.is(index.clientDevice('4A03', T0), undefined, 'expired');
  t.is(index.clientDevice('4A04', T0), undefined, 'never issued');
  t.is(index.gatewayNameHolder('GW.example', 'dev-2', T0, () => true), 'dev-1');
  t.is(index.gatewayNameHolder('gw.example', 'dev-1', T0, () => true), undefined, 'its own');
  t.is(index.gatewayNameHolder('gw.example', 'dev-2', T0, () => false), undefined, 'holder revoked');
  t.is(index.gatewayNameHolder('203.0.113.7', 'dev-2', T0, () => true), 'dev-1', 'a public address belongs to one device');
  t.is(index.gatewayNameHolder('192.168.1.20', 'dev-2', T0, () => true), undefined, 'private addresses repeat across sites');
  t.is(index.gatewayNameHolder('fd00::20', 'dev-2', T0, () => true), undefined, 'unique local IPv6 too');
  index.setDevice('dev-1', []);
  t.is(index.clientDevice('4A01', T0), undefined, 'replaced');
  t.is(index.gatewayNameHolder('gw.example', 'dev-2', T0, () => true), undefined);
});
