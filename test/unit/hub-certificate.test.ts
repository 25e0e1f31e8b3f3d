/**
 * The hub's own server certificates (hub/pki/hub-certificate.ts) in a temp DATA/tls: reused across
 * restarts only while they carry the same names (compared normalised) and keep more than a third
 * of their life; re-issued otherwise; never outliving the CA.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDataCa } from '../../hub/pki/ca.js';
import { ensureHubCertificate, type HubCertificateOptions } from '../../hub/pki/hub-certificate.js';
import { hubNameCovering, normalName, subjectAltNames } from '../../hub/pki/names.js';
import { FakeClock } from '../helpers/fake-clock.js';

const LIFETIME_MS = 90_000;

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const dataDir = await mkdtemp(join(tmpdir(), 'edgeml-hub-cert-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const ca = await ensureDataCa(dataDir);
  const clock = new FakeClock(Math.floor(Date.now() / 1000) * 1000);
  const opts = (names: string[], lifetimeMs = LIFETIME_MS): HubCertificateOptions => ({ dataDir, name: 'hub', ca, names, clock, lifetimeMs });
  return { ca, clock, opts };
}

test('reused while the names are the same (in any spelling) and more than a third of its life is left', async (t) => {
  const { clock, opts } = await setup(t);
  const first = await ensureHubCertificate(opts(['hub.example', '::1', '10.0.0.1']));
  t.true(first.issued);
  t.deepEqual(subjectAltNames(first.cert), ['hub.example', '::1', '10.0.0.1']);
  const again = await ensureHubCertificate(opts(['10.0.0.1', 'HUB.example', '0:0:0:0:0:0:0:1']));
  t.false(again.issued, 'same names, another order and spelling');
  t.is(again.cert, first.cert);
  clock.ms += (LIFETIME_MS * 2) / 3 - 1000;
  t.false((await ensureHubCertificate(opts(['hub.example', '::1', '10.0.0.1']))).issued, 'just over a third left');
});

test('re-issued when the names change', async (t) => {
  const { opts } = await setup(t);
  const first = await ensureHubCertificate(opts(['hub.example']));
  const more = await ensureHubCertificate(opts(['hub.example', 'other.example']));
  t.true(more.issued);
  t.not(more.cert, first.cert);
  t.deepEqual(subjectAltNames(more.cert), ['hub.example', 'other.example']);
  t.true((await ensureHubCertificate(opts(['other.example']))).issued, 'fewer names');
});

test('re-issued with less than a third of its life left', async (t) => {
  const { clock, opts } = await setup(t);
  const first = await ensureHubCertificate(opts(['hub.example']));
  clock.ms += (LIFETIME_MS * 2) / 3 + 1000;
  const renewed = await ensureHubCertificate(opts(['hub.example']));
  t.true(renewed.issued);
  t.not(renewed.cert, first.cert);
  t.is(renewed.notBefore, clock.ms);
});

test('a hub certificate never outlives its CA', async (t) => {
  const { ca, opts } = await setup(t);
  const pair = await ensureHubCertificate(opts(['hub.example'], 50 * 365 * 24 * 3600 * 1000));
  t.is(pair.notAfter, ca.certificate.notAfter.getTime());
  t.is(Date.parse(new X509Certificate(pair.cert).validTo), ca.certificate.notAfter.getTime());
});

test('names: one spelling each, and a wildcard covers exactly one label', (t) => {
  t.is(normalName('2001:0DB8:0:0:0:0:0:1'), '2001:db8::1');
  t.is(normalName('Hub.Example.'), 'hub.example');
  t.is(normalName('10.0.0.1'), '10.0.0.1');
  const hub = ['*.edge.example', '2001:db8::1'];
  t.is(hubNameCovering('a.edge.example', hub), '*.edge.example');
  t.is(hubNameCovering('A.EDGE.example', hub), '*.edge.example');
  t.is(hubNameCovering('a.b.edge.example', hub), undefined, 'two labels');
  t.is(hubNameCovering('edge.example', hub), undefined, 'the parent itself');
  t.is(hubNameCovering('2001:db8:0::1', hub), '2001:db8::1');
});

test("an operator's certificate's subjectAltName is read as the hub's names (DNS, IPv4, IPv6 canonical)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-op-cert-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [key, cert] = [join(dir, 'op.key'), join(dir, 'op.crt')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=op', '-addext', 'subjectAltName=DNS:Op.Example,DNS:*.edge.example,IP:10.1.2.3,IP:2001:db8:0:0:0:0:0:7'], { stdio: 'ignore' });
  t.deepEqual(subjectAltNames(await readFile(cert, 'utf8')), ['op.example', '*.edge.example', '10.1.2.3', '2001:db8::7']);
});
