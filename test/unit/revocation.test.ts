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
