/**
 * The hub's CA as the REST API shows it: its certificate (public, no key needed), its revocation
 * list, and the certificates the hub signed for a device.
 */
import { Type, type Static } from '@sinclair/typebox';
import { CERTIFICATE_PURPOSES } from '../protocol.js';
import { stringEnum } from '../schema.js';
import { Timestamp } from './common.js';

export const PEM_MEDIA_TYPE = 'application/x-pem-file';

export const CaCertificate = Type.Object(
  {
    certificate: Type.String({ description: "the CA certificate, PEM: what clients trust (`--ca FILE`, `EDGEML_CA`, curl's `--cacert`)" }),
    fingerprint256: Type.String({ description: 'SHA-256 fingerprint, colon-separated hex as openssl prints it: compare it out of band before trusting the certificate' }),
    subject: Type.String(),
    notAfter: Timestamp,
  },
  { additionalProperties: false },
);
export type CaCertificate = Static<typeof CaCertificate>;

export const IssuedCertificateView = Type.Object(
  {
    serial: Type.String({ description: 'hex, as in the CRL' }),
    purpose: stringEnum(CERTIFICATE_PURPOSES, { description: '`gateway`: the HTTPS scoring endpoint; `client`: MQTT with a client certificate' }),
    names: Type.Array(Type.String(), { description: 'DNS names and IP addresses (gateway), or the device id (client)' }),
    notBefore: Timestamp,
    notAfter: Timestamp,
  },
  { additionalProperties: false },
);

export const DeviceCertificates = Type.Object({ certificates: Type.Array(IssuedCertificateView, { description: 'unexpired, oldest first' }) }, { additionalProperties: false });
export type DeviceCertificates = Static<typeof DeviceCertificates>;
