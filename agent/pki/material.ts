/**
 * A key, its certificate and the CA that signed it, checked together: the certificate must hold
 * this key's public half, verify against the CA, and be in its validity period. Node's
 * X509Certificate does the checks.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { CertificatePurpose } from '../../shared/protocol.js';

export interface TlsMaterial {
  purpose: CertificatePurpose;
  /** PKCS #8 PEM. Never logged. */
  key: string;
  certificate: string;
  ca: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** subjectAltName entries as Node prints them ("DNS:localhost", "IP Address:127.0.0.1"). */
  names: string[];
}

function invalid(purpose: CertificatePurpose, why: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `the ${purpose} certificate ${why}`, { retryable: true, cause });
}

/** Throws AGENT_E_CERTIFICATE_FAILED saying what does not fit. */
export function checkMaterial(purpose: CertificatePurpose, parts: { key: string; certificate: string; ca: string }, now: number): TlsMaterial {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(parts.certificate);
    ca = new X509Certificate(parts.ca);
  } catch (err) {
    throw invalid(purpose, 'or its CA is not a PEM certificate', err);
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(parts.key));
  } catch (err) {
    throw invalid(purpose, 'key is not a usable private key', err);
  }
  if (!matches) throw invalid(purpose, 'does not hold this device key');
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw invalid(purpose, `was not signed by the CA ${ca.subject.replace(/\n/g, ', ')}`);
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (now >= notAfter.getTime()) throw invalid(purpose, `expired at ${notAfter.toISOString()}`);
  return {
    purpose,
    ...parts,
    serial: cert.serialNumber,
    notBefore,
    notAfter,
    names: cert.subjectAltName?.split(', ') ?? [],
  };
}

/** Two-thirds into the certificate's life: time to renew, with a third left for a hub that is away. */
export function renewalTime(material: Pick<TlsMaterial, 'notBefore' | 'notAfter'>): number {
  const from = material.notBefore.getTime();
  return from + ((material.notAfter.getTime() - from) * 2) / 3;
}
