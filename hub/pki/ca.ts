/**
 * The hub's certificate authority: it signs device certificates (gateway HTTPS, MQTT client), the
 * hub's own server certificates and the revocation list. Made at first start in DATA/ca (the key
 * readable by its owner only), or an operator's own from --ca-cert/--ca-key.
 *
 * A CA that is there but damaged is an error, never replaced: every certificate signed so far, and
 * every client that trusts the CA, would silently stop working.
 */
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileDurably } from '../../shared/durable-file.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { generateKeyPair, privateKeyPem, SIGNING_ALGORITHM, x509, type CryptoKey } from '../../shared/pki/x509.js';

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
function signingAlgorithmOf(keyPem: string): { algorithm: SigningAlgorithm; importAs: { name: string; hash: string } | { name: string; namedCurve: string } } {
  const key = createPrivateKey(keyPem);
  if (key.asymmetricKeyType === 'rsa') {
    return { algorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, importAs: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } };
  }
  const curve = key.asymmetricKeyType === 'ec' ? { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
  if (curve === undefined) throw new Error(`unsupported key type ${key.asymmetricKeyType ?? '?'} (use ECDSA P-256/P-384/P-521 or RSA)`);
  const hash = curve === 'P-256' ? 'SHA-256' : curve === 'P-384' ? 'SHA-384' : 'SHA-512';
  return { algorithm: { name: 'ECDSA', hash }, importAs: { name: 'ECDSA', namedCurve: curve } };
}

/** Parses and checks a CA pair; `where` names the files in the error. */
export async function caFromPem(certificatePem: string, keyPem: string, source: HubCa['source'], where: string): Promise<HubCa> {
  let certificate: x509.X509Certificate;
  let node: NodeX509Certificate;
  try {
    certificate = new x509.X509Certificate(certificatePem);
    node = new NodeX509Certificate(certificatePem);
  } catch (err) {
    throw caError(`the CA certificate ${where} is not a PEM certificate: ${(err as Error).message}`, err);
  }
  let signing: ReturnType<typeof signingAlgorithmOf>;
  let der: Buffer;
  try {
    signing = signingAlgorithmOf(keyPem);
    der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  } catch (err) {
    throw caError(`the CA key ${where} is not a usable private key: ${(err as Error).message}`, err);
  }
  const publicOfKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  if (!publicOfKey.equals(node.publicKey.export({ type: 'spki', format: 'der' }))) {
    throw caError(`the CA key ${where} does not belong to its certificate (${node.subject.replace(/\n/g, ', ')})`);
  }
  if (!node.ca) throw caError(`the certificate ${where} is not a CA certificate (basicConstraints CA:FALSE)`);
  const signingKey = (await webcrypto.subtle.importKey('pkcs8', new Uint8Array(der), signing.importAs, false, ['sign'])) as CryptoKey;
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
 * The hub's own CA in DATA/ca, made if absent. The key is written (durably) before the certificate:
 * a start interrupted between the two finds the key alone and signs its certificate then.
 */
export async function ensureDataCa(dataDir: string, now: Date = new Date()): Promise<HubCa & { created: boolean }> {
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
    const keys = await generateKeyPair();
    keyPem = privateKeyPem(keys.privateKey);
    await writeFileDurably(keyPath, keyPem, 0o600);
    created = true;
  }
  if (certPem === undefined) {
    const privateKey = createPrivateKey(keyPem);
    const subtle = webcrypto.subtle;
    const keys = {
      privateKey: (await subtle.importKey('pkcs8', new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' })), SIGNING_ALGORITHM, false, ['sign'])) as CryptoKey,
      publicKey: (await subtle.importKey('spki', new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })), SIGNING_ALGORITHM, true, ['verify'])) as CryptoKey,
    };
    certPem = await selfSign(keys, now);
    await writeFileDurably(certPath, certPem, 0o644);
    created = true;
  }
  return { ...(await caFromPem(certPem, keyPem, 'hub', `in ${dir}`)), created };
}

/** The operator's CA from --ca-cert/--ca-key: both or neither, readable, and the key must match. */
export async function loadOperatorCa(certPath: string, keyPath: string): Promise<HubCa> {
  const read = async (flag: string, path: string) => {
    try {
      return await readFile(resolve(path), 'utf8');
    } catch (err) {
      throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: ${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
  };
  const certPem = await read('--ca-cert', certPath);
  const keyPem = await read('--ca-key', keyPath);
  return caFromPem(certPem, keyPem, 'operator', `(--ca-cert ${certPath}, --ca-key ${keyPath})`);
}

/** The CA the configuration asks for: the operator's, or the hub's own in DATA/ca. */
export async function openHubCa(config: { caCert?: string | undefined; caKey?: string | undefined }, dataDir: string): Promise<HubCa & { created: boolean }> {
  const { caCert, caKey } = config;
  if ((caCert === undefined) !== (caKey === undefined)) {
    throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: --ca-cert and --ca-key go together: give both, or neither for the hub's own CA in DATA/${CA_DIR}`);
  }
  if (caCert !== undefined && caKey !== undefined) return { ...(await loadOperatorCa(caCert, caKey)), created: false };
  return ensureDataCa(dataDir);
}

/**
 * What `edgeml hub ca` prints: the operator's CA certificate (--ca-cert), or the hub's own in
 * DATA/ca, made now if no hub has started there yet (the next start uses it).
 */
export async function caCertificateFor(config: { data: string; caCert?: string | undefined }): Promise<CaSummary> {
  if (config.caCert === undefined) return caSummary(await ensureDataCa(resolve(config.data)));
  let pem: string;
  try {
    pem = await readFile(resolve(config.caCert), 'utf8');
  } catch (err) {
    throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: --ca-cert ${config.caCert}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  try {
    return caSummary({ certificatePem: new x509.X509Certificate(pem).toString('pem') + '\n' });
  } catch (err) {
    throw caError(`--ca-cert ${config.caCert} is not a PEM certificate: ${(err as Error).message}`, err);
  }
}
