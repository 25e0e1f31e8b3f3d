/**
 * A PKCS #10 request for the hub's CA, signed with a key made here (it never leaves the device):
 * a `gateway` request names what the gateway serves under; a `client` request's CN is the device id.
 */
import type { CertificatePurpose } from '../../shared/protocol.js';
import { SIGNING_ALGORITHM, x509, type CryptoKeyPair } from '../../shared/pki/x509.js';
import type { SubjectName } from './names.js';

export interface CsrSubject {
  /** Subject common name: the device id. */
  commonName: string;
  /** subjectAltName entries; a `client` request has none. */
  names: SubjectName[];
}

/** The DN escapes nothing: device ids are letters, digits, '.', '_' and '-' (DEVICE_ID_PATTERN). */
export async function createCsr(purpose: CertificatePurpose, keys: CryptoKeyPair, subject: CsrSubject): Promise<string> {
  const extensions = purpose === 'gateway' && subject.names.length > 0 ? [new x509.SubjectAlternativeNameExtension(subject.names)] : [];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${subject.commonName}`, keys, signingAlgorithm: SIGNING_ALGORITHM, extensions });
  return csr.toString('pem');
}
