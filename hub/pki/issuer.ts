/**
 * Signs devices' certificate requests (CSRs that came over MQTT) by the policy in DESIGN.md:
 * - `client` (MQTT with a client certificate): the CSR's CN must be the device id; the certificate
 *   says CN = device id, usage clientAuth.
 * - `gateway` (the device's HTTPS scoring endpoint): the names are the CSR's subjectAltName, usage
 *   serverAuth; refused are wildcards, more than MAX_GATEWAY_NAMES, none, and the hub's own names
 *   (loopback names excepted: they mean the same machine wherever they are used).
 * The CSR's signature must verify (the device holds the key). Each certificate is stored with the
 * device before it is answered, so a revocation lists it in the CRL.
 */
import { isIP } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { x509 } from '../../shared/pki/x509.js';
import type { CertificatePurpose } from '../../shared/protocol.js';
import type { DeviceRepository, IssuedCertificate } from '../store/store.js';
import type { HubCa } from './ca.js';
import { isLoopbackName, type CertificateName } from './names.js';
import { signLeaf, wholeSecond } from './sign.js';

export const MAX_GATEWAY_NAMES = 32;
/**
 * Unexpired certificates a device may hold at once. An agent renews at two thirds of a lifetime, so
 * it holds about two per purpose; more means a loop or a flood, each of which would grow the store.
 */
export const MAX_UNEXPIRED_PER_DEVICE = 16;

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

export interface IssuerDeps {
  ca: HubCa;
  devices: Pick<DeviceRepository, 'update'>;
  /** Enrolled and not revoked. */
  isActive(deviceId: string): boolean;
  clock: Clock;
  lifetimeMs: number;
  /** The names of the hub's own certificates: no device gets them. */
  hubNames(): readonly string[];
}

export interface IssuedAnswer {
  certificate: string;
  notAfter: Date;
  serial: string;
}

function refused(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_CSR_REFUSED, message, cause === undefined ? {} : { cause });
}

export class CertificateIssuer {
  constructor(private readonly deps: IssuerDeps) {}

  async issue(deviceId: string, request: { purpose: CertificatePurpose; csr: string }): Promise<IssuedAnswer> {
    if (!this.deps.isActive(deviceId)) throw refused(`device ${deviceId} is not enrolled, or is revoked`);
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(request.csr);
    } catch (err) {
      throw refused(`the CSR is not a PEM PKCS #10 request: ${(err as Error).message}`, err);
    }
    if (!(await csr.verify().catch(() => false))) throw refused("the CSR's signature does not verify");
    const names = request.purpose === 'client' ? this.clientNames(deviceId, csr) : this.gatewayNames(csr);

    const now = this.deps.clock.now();
    const notBefore = wholeSecond(now);
    const notAfter = wholeSecond(now + this.deps.lifetimeMs);
    const signed = await signLeaf(this.deps.ca, {
      commonName: deviceId,
      names,
      publicKey: csr.publicKey,
      usage: request.purpose === 'client' ? 'clientAuth' : 'serverAuth',
      notBefore,
      notAfter,
    });
    const issued: IssuedCertificate = {
      serial: signed.serial,
      purpose: request.purpose,
      names: request.purpose === 'client' ? [deviceId] : names.map((n) => n.value),
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
    };
    await this.deps.devices.update(deviceId, (record) => {
      // Checked in the write: a revocation stored meanwhile has already built its CRL without this one.
      if (record.revokedAt) throw refused(`device ${deviceId} is revoked`);
      const unexpired = (record.certificates ?? []).filter((c) => Date.parse(c.notAfter) > now);
      if (unexpired.length >= MAX_UNEXPIRED_PER_DEVICE) {
        throw refused(`device ${deviceId} holds ${unexpired.length} unexpired certificates already: ask again once one expires`);
      }
      record.certificates = [...unexpired, issued];
    });
    return { certificate: signed.pem, notAfter, serial: signed.serial };
  }

  private clientNames(deviceId: string, csr: x509.Pkcs10CertificateRequest): CertificateName[] {
    const cn = csr.subjectName.getField('CN');
    if (cn.length !== 1 || cn[0] !== deviceId) {
      throw refused(`a client certificate request must have the subject CN=${deviceId} (the device id), not ${JSON.stringify(csr.subject.slice(0, 200))}`);
    }
    return [];
  }

  private gatewayNames(csr: x509.Pkcs10CertificateRequest): CertificateName[] {
    const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
    const items = san?.names.items ?? [];
    if (items.length === 0) throw refused('a gateway certificate request must name its DNS names and IP addresses in subjectAltName');
    if (items.length > MAX_GATEWAY_NAMES) throw refused(`a gateway certificate request may have at most ${MAX_GATEWAY_NAMES} names, not ${items.length}`);
    const hub = new Set(this.deps.hubNames().map((n) => n.toLowerCase()));
    const names: CertificateName[] = [];
    for (const item of items) {
      if (item.type !== 'dns' && item.type !== 'ip') throw refused(`a gateway certificate has DNS names and IP addresses only, not ${item.type}`);
      const value = item.type === 'dns' ? item.value.toLowerCase() : item.value;
      if (value.includes('*')) throw refused(`wildcard names are not signed: ${value}`);
      if (item.type === 'dns' && !DNS_NAME.test(value)) throw refused(`not a DNS name: ${JSON.stringify(value)}`);
      if (item.type === 'ip' && isIP(value) === 0) throw refused(`not an IP address: ${JSON.stringify(value)}`);
      if (hub.has(value) && !isLoopbackName(value)) throw refused(`${value} is one of the hub's own names`);
      if (!names.some((n) => n.value === value)) names.push({ type: item.type, value });
    }
    return names;
  }
}
