/**
 * The hub's certificate authority: it signs device certificates (gateway HTTPS, MQTT client), the
 * hub's own server certificates and the revocation list. Made at first start in DATA/ca (the key
 * readable by its owner only), or an operator's own from --ca-cert/--ca-key.
 *
 * A CA that is there but damaged is an error, never replaced: every certificate signed so far, and
 * every client that trusts the CA, would silently stop working.
 */
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { link, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileDurably, fsyncDir } from '../../shared/durable-file.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { generateKeyPair, importPrivateKeyPem, privateKeyPem, SIGNING_ALGORITHM, x509, type CryptoKey, type KeyImportAlgorithm } from '../../shared/pki/x509.js';
import { readConfigFile } from '../config.js';

export const CA_DIR = 'ca';
export const CA_KEY_FILE = 'ca.key';
export const CA_CERT_FILE = 'ca.crt';
const CA_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;

export interface SigningAlgorithm {
  name: string;
  hash: string;
}

export interface HubCa {
  /** PEM, as served at GET /api/v1/ca and printed by `edgeml hub ca`. */
  readonly certificatePem: string;
  readonly certificate: x509.X509Certificate;
  readonly signingKey: CryptoKey;
  readonly signingAlgorithm: SigningAlgorithm;
  /** Where it came from, for logs: DATA/ca or the operator's files. */
  readonly source: 'hub' | 'operator';
}

export interface CaSummary {
  certificate: string;
  fingerprint256: string;
  subject: string;
  notAfter: string;
}

export function caSummary(ca: Pick<HubCa, 'certificatePem'>): CaSummary {
  const c = new NodeX509Certificate(ca.certificatePem);
  return { certificate: ca.certificatePem, fingerprint256: c.fingerprint256, subject: c.subject, notAfter: new Date(c.validTo).toISOString() };
}

function caError(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_CA_INVALID, message, cause === undefined ? {} : { cause });
}

/** The algorithm a CA key signs with: the hub's own are P-256, an operator's may be RSA or another curve. */
function signingAlgorithmOf(keyPem: string): { algorithm: SigningAlgorithm; importAs: KeyImportAlgorithm } {
  const key = createPrivateKey(keyPem);
  if (key.asymmetricKeyType === 'rsa') {
    return { algorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, importAs: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } };
  }
  const curve = key.asymmetricKeyType === 'ec' ? { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
  if (curve === undefined) throw new Error(`unsupported key type ${key.asymmetricKeyType ?? '?'} (use ECDSA P-256/P-384/P-521 or RSA)`);
  const hash = curve === 'P-256' ? 'SHA-256' : curve === 'P-384' ? 'SHA-384' : 'SHA-512';
  return { algorithm: { name: 'ECDSA', hash }, importAs: { name: 'ECDSA', namedCurve: curve } };
}

/**
 * Parses and checks a CA pair; `where` names the files in the error. Only a self-signed root that
 * has not expired: the CA certificate is all clients are given to trust (GET /api/v1/ca, the
 * broker's client check), and OpenSSL verifies a chain only up to a self-signed root, so an
 * intermediate's certificates would verify nowhere.
 */
export async function caFromPem(certificatePem: string, keyPem: string, source: HubCa['source'], where: string, now: Date = new Date()): Promise<HubCa> {
  let certificate: x509.X509Certificate;
  let node: NodeX509Certificate;
  try {
    certificate = new x509.X509Certificate(certificatePem);
    node = new NodeX509Certificate(certificatePem);
  } catch (err) {
    throw caError(`the CA certificate ${where} is not a PEM certificate: ${(err as Error).message}`, err);
  }
  let signing: ReturnType<typeof signingAlgorithmOf>;
  let pkcs8: string;
  try {
    signing = signingAlgorithmOf(keyPem);
    pkcs8 = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (err) {
    throw caError(`the CA key ${where} is not a usable private key: ${(err as Error).message}`, err);
  }
  const publicOfKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  if (!publicOfKey.equals(node.publicKey.export({ type: 'spki', format: 'der' }))) {
    throw caError(`the CA key ${where} does not belong to its certificate (${node.subject.replace(/\n/g, ', ')})`);
  }
  if (!node.ca) throw caError(`the certificate ${where} is not a CA certificate (basicConstraints CA:FALSE)`);
  if (!node.checkIssued(node) || !node.verify(node.publicKey)) {
    throw caError(
      `the CA certificate ${where} is not a self-signed root (it was issued by ${node.issuer.replace(/\n/g, ', ')}): give a root CA, since clients given only an intermediate cannot verify what it signs`,
    );
  }
  const notAfter = new Date(node.validTo);
  if (notAfter.getTime() <= now.getTime()) throw caError(`the CA certificate ${where} expired at ${notAfter.toISOString()}`);
  const signingKey = await importPrivateKeyPem(pkcs8, signing.importAs);
  return { certificatePem: certificate.toString('pem') + '\n', certificate, signingKey, signingAlgorithm: signing.algorithm, source };
}

/** A new self-signed CA certificate for `keys`. */
async function selfSign(keys: { privateKey: CryptoKey; publicKey: CryptoKey }, now: Date): Promise<string> {
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=edgeml hub CA ${randomBytes(4).toString('hex')}`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + CA_LIFETIME_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return cert.toString('pem') + '\n';
}

/** 16 random bytes, positive and without a leading zero byte, so its hex is the same everywhere (uppercase, as openssl and Node print it). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex').toUpperCase();
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw caError(`cannot read ${path}: ${(err as Error).message}`, err);
  }
}

/**
 * Writes `data` at `path` unless something is there already, and returns what is there then: two
 * processes making the CA at once (`edgeml hub ca` and a first `hub start`) agree on one file.
 * The content is made durable under a temp name and linked into place: link fails if the name
 * exists, where a rename would replace it.
 */
async function publishOnce(path: string, data: string, mode: number): Promise<{ content: string; created: boolean }> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFileDurably(tmp, data, mode);
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw caError(`cannot create ${path}: ${(err as Error).message}`, err);
    return { content: (await readIfThere(path)) ?? data, created: false };
  } finally {
    await rm(tmp, { force: true });
  }
  await fsyncDir(resolve(path, '..'));
  return { content: data, created: true };
}

/**
 * The hub's own CA in DATA/ca, made if absent. The key is written (durably) before the certificate:
 * a start interrupted between the two finds the key alone and signs its certificate then.
 * `keyReadableByOthers`: the key file's mode lets its group or others read it (the caller warns).
 */
export async function ensureDataCa(dataDir: string, now: Date = new Date()): Promise<HubCa & { created: boolean; keyReadableByOthers: boolean }> {
  const dir = join(dataDir, CA_DIR);
  const keyPath = join(dir, CA_KEY_FILE);
  const certPath = join(dir, CA_CERT_FILE);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let keyPem = await readIfThere(keyPath);
  let certPem = await readIfThere(certPath);
  if (certPem !== undefined && keyPem === undefined) {
    throw caError(`${certPath} is there but ${keyPath} is not: restore the key from a backup (the hub does not replace a CA, since every device trusts it)`);
  }
  let created = false;
  if (keyPem === undefined) {
    const published = await publishOnce(keyPath, privateKeyPem((await generateKeyPair()).privateKey), 0o600);
    keyPem = published.content;
    created ||= published.created;
  }
  if (certPem === undefined) {
    const privateKey = createPrivateKey(keyPem);
    const keys = {
      privateKey: await importPrivateKeyPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
      publicKey: (await webcrypto.subtle.importKey('spki', new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })), SIGNING_ALGORITHM, true, ['verify'])) as CryptoKey,
    };
    const published = await publishOnce(certPath, await selfSign(keys, now), 0o644);
    certPem = published.content;
    created ||= published.created;
  }
  const keyReadableByOthers = ((await stat(keyPath)).mode & 0o044) !== 0;
  return { ...(await caFromPem(certPem, keyPem, 'hub', `in ${dir}`, now)), created, keyReadableByOthers };
}

/** The operator's CA from --ca-cert/--ca-key: both or neither, readable, and the key must match. */
export async function loadOperatorCa(certPath: string, keyPath: string): Promise<HubCa> {
  const certPem = await readConfigFile('--ca-cert', certPath);
  const keyPem = await readConfigFile('--ca-key', keyPath);
  return caFromPem(certPem, keyPem, 'operator', `(--ca-cert ${certPath}, --ca-key ${keyPath})`);
}

/** The CA the configuration asks for: the operator's, or the hub's own in DATA/ca. */
export async function openHubCa(config: { caCert?: string | undefined; caKey?: string | undefined }, dataDir: string): Promise<HubCa & { created: boolean; keyReadableByOthers: boolean }> {
  const { caCert, caKey } = config;
  if ((caCert === undefined) !== (caKey === undefined)) {
    throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: --ca-cert and --ca-key go together: give both, or neither for the hub's own CA in DATA/${CA_DIR}`);
  }
  if (caCert !== undefined && caKey !== undefined) return { ...(await loadOperatorCa(caCert, caKey)), created: false, keyReadableByOthers: false };
  return ensureDataCa(dataDir);
}

/**
 * What `edgeml hub ca` prints: the operator's CA certificate (--ca-cert), or the hub's own in
 * DATA/ca, made now if no hub has started there yet (the next start uses it).
 */
export async function caCertificateFor(config: { data: string; caCert?: string | undefined }): Promise<CaSummary> {
  if (config.caCert === undefined) return caSummary(await ensureDataCa(resolve(config.data)));
  const pem = await readConfigFile('--ca-cert', config.caCert);
  try {
    return caSummary({ certificatePem: new x509.X509Certificate(pem).toString('pem') + '\n' });
  } catch (err) {
    throw caError(`--ca-cert ${config.caCert} is not a PEM certificate: ${(err as Error).message}`, err);
  }
}
