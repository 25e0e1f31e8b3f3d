/**
 * The hub's CA (hub/pki/ca.ts) on a temp directory: made once (key 0600, key before certificate),
 * reloaded as is, never replaced when damaged; an operator's CA must be complete and matching.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caCertificateFor, caFromPem, ensureDataCa, openHubCa, CA_CERT_FILE, CA_DIR, CA_KEY_FILE } from '../../hub/pki/ca.js';
import { ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import { generateKeyPair, privateKeyPem, x509 } from '../../shared/pki/x509.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-hub-ca-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const code = (c: string) => ({ is: (err: unknown) => isEdgemlError(err) && err.code === c });

test('a first start makes a CA in DATA/ca: key 0600, a 10-year CA certificate for signing certificates and CRLs', async (t) => {
  const data = await tempDir(t);
  const now = new Date('2026-12-01T10:00:00.400Z');
  const ca = await ensureDataCa(data, now);
  t.true(ca.created);
  t.is(ca.source, 'hub');
  const keyStat = await stat(join(data, CA_DIR, CA_KEY_FILE));
  t.is(keyStat.mode & 0o777, 0o600);
  const pem = await readFile(join(data, CA_DIR, CA_CERT_FILE), 'utf8');
  t.is(pem, ca.certificatePem);
  const cert = new X509Certificate(pem);
  t.true(cert.ca);
  t.regex(cert.subject, /^CN=edgeml hub CA [0-9a-f]{8}$/);
  t.true(cert.verify(cert.publicKey), 'self-signed');
  t.is(new Date(cert.validFrom).toISOString(), '2026-12-01T10:00:00.000Z');
  t.is(new Date(cert.validTo).getUTCFullYear(), 2036);
  const usage = new x509.X509Certificate(pem).getExtension(x509.KeyUsagesExtension);
  t.is(usage?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  t.true(usage?.critical);
  t.true((await readFile(join(data, CA_DIR, CA_KEY_FILE), 'utf8')).startsWith('-----BEGIN PRIVATE KEY-----'), 'PKCS #8 PEM');
});

test('a later start reloads the same CA', async (t) => {
  const data = await tempDir(t);
  const first = await ensureDataCa(data);
  const again = await ensureDataCa(data);
  t.false(again.created);
  t.is(again.certificatePem, first.certificatePem);
});

test('a key without its certificate (a start interrupted between the two writes) gets its certificate', async (t) => {
  const data = await tempDir(t);
  const first = await ensureDataCa(data);
  await rm(join(data, CA_DIR, CA_CERT_FILE));
  const again = await ensureDataCa(data);
  t.true(again.created);
  const before = new X509Certificate(first.certificatePem).publicKey.export({ type: 'spki', format: 'der' });
  t.deepEqual(new X509Certificate(again.certificatePem).publicKey.export({ type: 'spki', format: 'der' }), before);
});

test('a damaged CA is an error and is left as it is', async (t) => {
  const data = await tempDir(t);
  await ensureDataCa(data);
  const keyPath = join(data, CA_DIR, CA_KEY_FILE);
  const certPath = join(data, CA_DIR, CA_CERT_FILE);
  const otherKey = privateKeyPem((await generateKeyPair()).privateKey);
  await writeFile(keyPath, otherKey);
  const mismatch = await t.throwsAsync(ensureDataCa(data));
  t.true(code(ErrorCodes.HUB_CA_INVALID).is(mismatch));
  t.regex(mismatch!.message, /does not belong to its certificate/);
  t.is(await readFile(keyPath, 'utf8'), otherKey, 'not replaced');

  await writeFile(certPath, 'not a certificate');
  t.true(code(ErrorCodes.HUB_CA_INVALID).is(await t.throwsAsync(ensureDataCa(data))));

  await rm(keyPath);
  const lonely = await t.throwsAsync(ensureDataCa(data));
  t.true(code(ErrorCodes.HUB_CA_INVALID).is(lonely));
  t.regex(lonely!.message, /ca\.key is not/);
});

test("an operator's CA: both files or neither, readable, matching, a CA; RSA keys sign too", async (t) => {
  const dir = await tempDir(t);
  const certPath = join(dir, 'op.crt');
  const keyPath = join(dir, 'op.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '30', '-subj', '/CN=Operator CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'ignore' });

  const half = await t.throwsAsync(openHubCa({ caCert: certPath }, dir));
  t.true(code(ErrorCodes.CONFIG_INVALID).is(half));
  t.regex(half!.message, /--ca-cert and --ca-key go together/);

  const unreadable = await t.throwsAsync(openHubCa({ caCert: certPath, caKey: join(dir, 'missing.key') }, dir));
  t.true(code(ErrorCodes.CONFIG_INVALID).is(unreadable));
  t.regex(unreadable!.message, /--ca-key .*missing\.key: cannot read it \(ENOENT\)/);

  const ca = await openHubCa({ caCert: certPath, caKey: keyPath }, dir);
  t.is(ca.source, 'operator');
  t.is(ca.signingAlgorithm.name, 'RSASSA-PKCS1-v1_5');
  t.false(ca.created);
  const crl = await x509.X509CrlGenerator.create({ issuer: ca.certificate.subjectName, signingKey: ca.signingKey, signingAlgorithm: ca.signingAlgorithm, entries: [] });
  t.true(await crl.verify({ publicKey: ca.certificate.publicKey }), 'signs with its RSA key');

  const ecKey = privateKeyPem((await generateKeyPair()).privateKey);
  t.true(code(ErrorCodes.HUB_CA_INVALID).is(await t.throwsAsync(caFromPem(await readFile(certPath, 'utf8'), ecKey, 'operator', 'here'))));

  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '30', '-subj', '/CN=not a CA', '-addext', 'basicConstraints=critical,CA:FALSE'], { stdio: 'ignore' });
  const leaf = await t.throwsAsync(openHubCa({ caCert: certPath, caKey: keyPath }, dir));
  t.regex(leaf!.message, /not a CA certificate/);
});

test('`edgeml hub ca` prints the CA in DATA (made if absent), or the --ca-cert file', async (t) => {
  const data = await tempDir(t);
  const printed = await caCertificateFor({ data });
  const ca = await ensureDataCa(data);
  t.is(printed.certificate, ca.certificatePem);
  t.is(printed.fingerprint256, new X509Certificate(ca.certificatePem).fingerprint256);
  const other = join(data, 'other.crt');
  await writeFile(other, ca.certificatePem);
  t.is((await caCertificateFor({ data: join(data, 'unused'), caCert: other })).certificate, ca.certificatePem);
  t.true(code(ErrorCodes.CONFIG_INVALID).is(await t.throwsAsync(caCertificateFor({ data, caCert: join(data, 'nope.crt') }))));
});

test("an operator's CA must be a self-signed root that has not expired", async (t) => {
  const dir = await tempDir(t);
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', p('root.key'), '-out', p('root.crt'), '-days', '30', '-subj', '/CN=Root CA', ...caExt], { stdio: 'ignore' });
  execFileSync('openssl', ['req', '-new', ...ec, '-keyout', p('int.key'), '-out', p('int.csr'), '-subj', '/CN=Intermediate CA'], { stdio: 'ignore' });
  await writeFile(p('int.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  execFileSync('openssl', ['x509', '-req', '-in', p('int.csr'), '-CA', p('root.crt'), '-CAkey', p('root.key'), '-CAcreateserial', '-out', p('int.crt'), '-days', '30', '-extfile', p('int.ext')], { stdio: 'ignore' });

  const intermediate = await t.throwsAsync(openHubCa({ caCert: p('int.crt'), caKey: p('int.key') }, dir));
  t.true(code(ErrorCodes.HUB_CA_INVALID).is(intermediate));
  t.regex(intermediate!.message, /not a self-signed root \(it was issued by CN=Root CA\).*intermediate/);

  const root = await openHubCa({ caCert: p('root.crt'), caKey: p('root.key') }, dir);
  t.is(root.signingAlgorithm.name, 'ECDSA');
  const rootPem = await readFile(p('root.crt'), 'utf8');
  const keyPem = await readFile(p('root.key'), 'utf8');
  const later = new Date(Date.now() + 31 * 24 * 3600 * 1000);
  const expired = await t.throwsAsync(caFromPem(rootPem, keyPem, 'operator', '(here)', later));
  t.true(code(ErrorCodes.HUB_CA_INVALID).is(expired));
  t.regex(expired!.message, /expired at/);
});

test('two processes making the CA at once (edgeml hub ca and a first hub start) end up with one matching pair', async (t) => {
  const data = await tempDir(t);
  const made = await Promise.all([ensureDataCa(data), ensureDataCa(data), ensureDataCa(data), ensureDataCa(data)]);
  const onDisk = await readFile(join(data, CA_DIR, CA_CERT_FILE), 'utf8');
  for (const ca of made) t.is(ca.certificatePem, onDisk);
  t.true(made.some((ca) => ca.created));
  // The pair on disk loads (key matches certificate), and no temp file is left behind.
  await t.notThrowsAsync(ensureDataCa(data));
  t.deepEqual((await readdir(join(data, CA_DIR))).sort(), [CA_CERT_FILE, CA_KEY_FILE].sort());
});

test('a CA key readable by group or others is flagged for a warning', async (t) => {
  const data = await tempDir(t);
  t.false((await ensureDataCa(data)).keyReadableByOthers);
  await chmod(join(data, CA_DIR, CA_KEY_FILE), 0o640);
  t.true((await ensureDataCa(data)).keyReadableByOthers);
});
