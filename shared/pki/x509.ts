/**
 * The one place that sets up @peculiar/x509 (X.509 certificates, CSRs and CRLs over WebCrypto):
 * hub and agent import it from here, so both use the same algorithm and provider.
 * Keys are ECDSA P-256: small CSRs over MQTT, fast to make on a small device.
 */
import 'reflect-metadata';
import { KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export type { CryptoKey, CryptoKeyPair };

export const SIGNING_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export function generateKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(SIGNING_ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

/** PKCS #8 PEM, what node:tls takes as `key`. */
export function privateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Import parameters of a signing key: SIGNING_ALGORITHM's, or an operator CA's (RSA, another curve). */
export type KeyImportAlgorithm = { name: string; namedCurve: string } | { name: string; hash: string };

/** A PKCS #8 PEM key back as a WebCrypto signing key (SIGNING_ALGORITHM unless `algorithm` says otherwise). */
export async function importPrivateKeyPem(pem: string, algorithm: KeyImportAlgorithm = SIGNING_ALGORITHM): Promise<CryptoKey> {
  const der = new Uint8Array(Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64'));
  return webcrypto.subtle.importKey('pkcs8', der, algorithm, true, ['sign']) as Promise<CryptoKey>;
}

/** What callers need of a PEM certificate, parsed by Node (fingerprints as openssl prints them). */
export function certificateSummary(pem: string): { subject: string; serial: string; notBefore: Date; notAfter: Date; fingerprint256: string; subjectAltName: string | undefined } {
  const c = new X509Certificate(pem);
  return { subject: c.subject, serial: c.serialNumber, notBefore: new Date(c.validFrom), notAfter: new Date(c.validTo), fingerprint256: c.fingerprint256, subjectAltName: c.subjectAltName };
}
