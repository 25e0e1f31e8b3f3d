/**
 * Signs devices' certificate requests (CSRs that came over MQTT) by the policy in DESIGN.md:
 * - `client` (MQTT with a client certificate): the CSR's CN must be the device id; the certificate
 *   says CN = device id, usage clientAuth.
 * - `gateway` (the device's HTTPS scoring endpoint): the names are the CSR's subjectAltName, usage
 *   serverAuth; refused are wildcards, more than MAX_GATEWAY_NAMES, none, and the hub's own names
 *   (loopback names excepted: they mean the same machine wherever they are used).
 * - both: no name another active device holds in an unexpired gateway certificate (loopback and
 *   private addresses excepted: names.ts isSharedName), at most MAX_UNEXPIRED_PER_PURPOSE unexpired per purpose, keys EC P-256/P-384 or
 *   RSA of at least 2048 bits, and no later notAfter than the CA's own.
 * The CSR's signature must verify (the device holds the key). Each certificate is stored with the
 * device before it is answered, so a revocation lists it in the CRL; the per-device and per-name
 * checks are repeated inside that store write, so two requests at once cannot both pass them.
 */
import { createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { x509 } from '../../shared/pki/x509.js';
import type { CertificatePurpose } from '../../shared/protocol.js';
import type { DeviceRepository, IssuedCertificate } from '../store/store.js';
import type { HubCa } from './ca.js';
import { validIssuedCertificates, type IssuedCertificates } from './issued-certificates.js';
import { hubNameCovering, isDnsName, isLoopbackName, normalName, type CertificateName } from './names.js';
import { signLeaf, wholeSecond } from './sign.js';

export const MAX_GATEWAY_NAMES = 32;
/**
 * Unexpired certificates of one purpose a device may hold at once. An agent renews at two thirds of
 * a lifetime, so it holds about two per purpose; more means a loop or a flood, each of which would
 * grow the store.
 */
export const MAX_UNEXPIRED_PER_PURPOSE = 8;
export const MIN_RSA_BITS = 2048;
const EC_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384' };

export interface IssuerDeps {
  ca: HubCa;
  devices: Pick<DeviceRepository, 'update'>;
  /** Every device's issued certificates; the issuer keeps it in step with the store. */
  issued: IssuedCertificates;
  /** Enrolled and not revoked. */
  isActive(deviceId: string): boolean;
  clock: Clock;
  lifetimeMs: number;
  /** The names of the hub's own certificates (wildcards `*.x` included): no device gets them. */
  hubNames(): readonly string[];
}

export interface IssuedAnswer {
  certificate: string;
  notAfter: Date;
  serial: string;
}

interface ParsedRequest {
  publicKey: x509.PublicKey;
  names: CertificateName[];
}

function refused(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_CSR_REFUSED, message, cause === undefined ? {} : { cause });
}

export class CertificateIssuer {
  constructor(private readonly deps: IssuerDeps) {}

  async issue(deviceId: string, request: { purpose: CertificatePurpose; csr: string }): Promise<IssuedAnswer> {
    const { purpose } = request;
    if (!this.deps.isActive(deviceId)) throw refused(`device ${deviceId} is not enrolled, or is revoked`);
    const parsed = await this.parse(deviceId, request);
    const now = this.deps.clock.now();
    // Checked before signing too: a refused request costs no signature.
    this.checkHoldings(deviceId, purpose, parsed.names, this.deps.issued.certificatesOf(deviceId), now);

    const caNotAfter = this.deps.ca.certificate.notAfter.getTime();
    const notBefore = wholeSecond(now);
    const notAfter = wholeSecond(Math.min(now + this.deps.lifetimeMs, caNotAfter));
    if (notAfter.getTime() <= notBefore.getTime()) {
      throw new EdgemlError(ErrorCodes.HUB_CA_INVALID, `the hub's CA expired at ${new Date(caNotAfter).toISOString()}: it signs nothing more`);
    }
    const signed = await signLeaf(this.deps.ca, {
      commonName: deviceId,
      names: parsed.names,
      publicKey: parsed.publicKey,
      usage: purpose === 'client' ? 'clientAuth' : 'serverAuth',
      notBefore,
      notAfter,
    });
    const issued: IssuedCertificate = {
      serial: signed.serial,
      purpose,
      names: purpose === 'client' ? [deviceId] : parsed.names.map((n) => n.value),
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
    };
    let previous: readonly IssuedCertificate[] | undefined;
    try {
      await this.deps.devices.update(deviceId, (record) => {
        // Checked in the write: a revocation stored meanwhile has already built its CRL without this one.
        if (record.revokedAt) throw refused(`device ${deviceId} is revoked`);
        // A damaged stored entry (device-record-check.ts reports it) is dropped here for good.
        const unexpired = validIssuedCertificates(record.certificates).valid.filter((c) => Date.parse(c.notAfter) > now);
        this.checkHoldings(deviceId, purpose, parsed.names, unexpired, now);
        record.certificates = [...unexpired, issued];
        // In the same synchronous step as the check: the next request's write sees this one.
        previous = this.deps.issued.certificatesOf(deviceId);
        this.deps.issued.setDevice(deviceId, record.certificates);
      });
    } catch (err) {
      if (previous !== undefined) this.deps.issued.setDevice(deviceId, previous);
      throw err;
    }
    return { certificate: signed.pem, notAfter, serial: signed.serial };
  }

  /**
   * Everything read from the CSR, which @peculiar/x509 parses lazily (subject, extensions, key):
   * whatever fails to parse is the device's malformed request, never the hub's error.
   */
  private async parse(deviceId: string, request: { purpose: CertificatePurpose; csr: string }): Promise<ParsedRequest> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(request.csr);
    } catch (err) {
      throw refused(`the CSR is not a PEM PKCS #10 request: ${(err as Error).message}`, err);
    }
    let names: CertificateName[];
    let publicKey: x509.PublicKey;
    try {
      publicKey = csr.publicKey;
      checkKey(publicKey);
      names = request.purpose === 'client' ? clientNames(deviceId, csr) : this.gatewayNames(csr);
    } catch (err) {
      if (err instanceof EdgemlError) throw err;
      throw refused(`the CSR is malformed: ${(err as Error).message}`, err);
    }
    if (!(await csr.verify().catch(() => false))) throw refused("the CSR's signature does not verify");
    return { publicKey, names };
  }

  /** The per-purpose bound and the names other devices hold, against `held` (the device's unexpired certificates). */
  private checkHoldings(deviceId: string, purpose: CertificatePurpose, names: readonly CertificateName[], held: readonly IssuedCertificate[], now: number): void {
    const same = held.filter((c) => c.purpose === purpose && Date.parse(c.notAfter) > now).length;
    if (same >= MAX_UNEXPIRED_PER_PURPOSE) {
      throw refused(`device ${deviceId} holds ${same} unexpired ${purpose} certificates already: ask again once one expires`);
    }
    for (const name of names) {
      const holder = this.deps.issued.gatewayNameHolder(name.value, deviceId, now, this.deps.isActive);
      if (holder !== undefined) throw refused(`${name.value} is in a gateway certificate of device ${holder}: a name belongs to one device at a time`);
    }
  }

  private gatewayNames(csr: x509.Pkcs10CertificateRequest): CertificateName[] {
    const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
    const items = san?.names.items ?? [];
    if (items.length === 0) throw refused('a gateway certificate request must name its DNS names and IP addresses in subjectAltName');
    if (items.length > MAX_GATEWAY_NAMES) throw refused(`a gateway certificate request may have at most ${MAX_GATEWAY_NAMES} names, not ${items.length}`);
    const hubNames = this.deps.hubNames();
    const names: CertificateName[] = [];
    for (const item of items) {
      if (item.type !== 'dns' && item.type !== 'ip') throw refused(`a gateway certificate has DNS names and IP addresses only, not ${item.type}`);
      if (item.value.includes('*')) throw refused(`wildcard names are not signed: ${JSON.stringify(item.value.slice(0, 256))}`);
      if (item.type === 'dns' && !isDnsName(item.value.toLowerCase())) throw refused(`not a DNS name: ${JSON.stringify(item.value.slice(0, 256))}`);
      if (item.type === 'ip' && isIP(item.value) === 0) throw refused(`not an IP address: ${JSON.stringify(item.value.slice(0, 256))}`);
      const value = normalName(item.value);
      const hub = isLoopbackName(value) ? undefined : hubNameCovering(value, hubNames);
      if (hub !== undefined) throw refused(`${value} is one of the hub's own names${hub === value ? '' : ` (${hub})`}`);
      if (!names.some((n) => n.value === value)) names.push({ type: item.type, value });
    }
    return names;
  }
}

function clientNames(deviceId: string, csr: x509.Pkcs10CertificateRequest): CertificateName[] {
  const cn = csr.subjectName.getField('CN');
  if (cn.length !== 1 || cn[0] !== deviceId) {
    throw refused(`a client certificate request must have the subject CN=${deviceId} (the device id), not ${JSON.stringify(csr.subject.slice(0, 200))}`);
  }
  return [];
}

/** EC P-256/P-384 or RSA of at least MIN_RSA_BITS: what every TLS stack takes, and not breakable. */
function checkKey(publicKey: x509.PublicKey): void {
  const key = createPublicKey({ key: Buffer.from(publicKey.rawData), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType === 'ec' && EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''] !== undefined) return;
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= MIN_RSA_BITS) return;
  const detail = key.asymmetricKeyType === 'rsa' ? `RSA ${key.asymmetricKeyDetails?.modulusLength ?? '?'} bits` : `${key.asymmetricKeyType ?? '?'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}`.trim();
  throw refused(`the CSR's key is ${detail}: use EC P-256 or P-384, or RSA of at least ${MIN_RSA_BITS} bits`);
}
