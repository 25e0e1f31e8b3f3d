/** Throwaway CAs and server certificates for TLS tests, made with the hub's own X.509 setup. */
import { randomBytes } from 'node:crypto';
import { generateKeyPair, privateKeyPem, SIGNING_ALGORITHM, x509, type CryptoKeyPair } from '../../shared/pki/x509.js';

export interface TestCa {
  pem: string;
  name: string;
  keys: CryptoKeyPair;
}

export interface ServerCert {
  cert: string;
  key: string;
}

const DAY = 86_400_000;

export async function makeCa(cn: string): Promise<TestCa> {
  const keys = await generateKeyPair();
  const name = `CN=${cn}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + DAY),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { pem: cert.toString('pem'), name, keys };
}

/** A serverAuth certificate from `ca` for `names` (IPs and DNS names); `expired` puts its validity in the past. */
export async function issueServerCert(ca: TestCa, names: { ip?: string[]; dns?: string[] }, opts: { expired?: boolean } = {}): Promise<ServerCert> {
  const keys = await generateKeyPair();
  const shift = opts.expired ? -3 * DAY : 0;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: 'CN=test-server',
    issuer: ca.name,
    notBefore: new Date(Date.now() - DAY + shift),
    notAfter: new Date(Date.now() + DAY + shift),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.SubjectAlternativeNameExtension([...(names.ip ?? []).map((value) => ({ type: 'ip' as const, value })), ...(names.dns ?? []).map((value) => ({ type: 'dns' as const, value }))]),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  return { cert: cert.toString('pem'), key: privateKeyPem(keys.privateKey) };
}
