/**
 * TLS for tests of the agent's certificates: a throwaway CA that signs CSRs the way the hub's does
 * (unit tests, no hub), and a look at which certificate a TLS server serves right now.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:tls';
import { generateKeyPair, SIGNING_ALGORITHM, x509, type CryptoKeyPair } from '../../shared/pki/x509.js';

export interface TestCa {
  pem: string;
  keys: CryptoKeyPair;
  name: string;
}

export async function makeTestCa(notBefore: Date, name = 'CN=edgeml test CA'): Promise<TestCa> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 365 * 24 * 3600 * 1000),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { pem: cert.toString('pem'), keys, name };
}

/** Signs a CSR (its subject and subjectAltName as asked) for [notBefore, notAfter]; returns PEM. */
export async function signCsr(ca: TestCa, csrPem: string, notBefore: Date, notAfter: Date): Promise<string> {
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const san = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension);
  const cert = await x509.X509CertificateGenerator.create({
    // Positive, non-zero first byte: serials as Node prints them keep their length.
    serialNumber: `7${randomBytes(8).toString('hex')}`,
    subject: csr.subject,
    issuer: ca.name,
    notBefore,
    notAfter,
    signingKey: ca.keys.privateKey,
    publicKey: csr.publicKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: san ? [san] : [],
  });
  return cert.toString('pem');
}

/** The serial of the certificate a TLS server on host:port serves to a new connection (verified against `ca`). */
export function servedSerial(host: string, port: number, ca: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ca, servername: host === '127.0.0.1' || host === '::1' ? undefined : host }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}
