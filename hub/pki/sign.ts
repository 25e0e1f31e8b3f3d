/**
 * Signs one end-entity certificate with the hub's CA: devices' (issuer.ts) and the hub's own
 * (hub-certificate.ts) are made the same way, and differ only in names, usage and lifetime.
 */
import { x509, type CryptoKey } from '../../shared/pki/x509.js';
import type { HubCa } from './ca.js';
import { randomSerial } from './ca.js';
import type { CertificateName } from './names.js';

export interface LeafRequest {
  commonName: string;
  /** subjectAltName entries; none for a client certificate. */
  names: readonly CertificateName[];
  publicKey: x509.PublicKey | CryptoKey;
  usage: 'serverAuth' | 'clientAuth';
  notBefore: Date;
  notAfter: Date;
}

export interface SignedLeaf {
  pem: string;
  /** Uppercase hex, as in the CRL and as openssl and Node print it. */
  serial: string;
}

/** X.509 times have whole seconds: what is signed is what a later check reads back. */
export function wholeSecond(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

export async function signLeaf(ca: HubCa, req: LeafRequest): Promise<SignedLeaf> {
  const serial = randomSerial();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([req.usage === 'serverAuth' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
  ];
  if (req.names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(req.names.map((n) => ({ type: n.type, value: n.value }))));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: new x509.Name([{ CN: [req.commonName] }]),
    issuer: ca.certificate.subjectName,
    notBefore: req.notBefore,
    notAfter: req.notAfter,
    publicKey: req.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: ca.signingAlgorithm,
    extensions,
  });
  return { pem: cert.toString('pem') + '\n', serial };
}
