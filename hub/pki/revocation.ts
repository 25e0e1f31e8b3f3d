/**
 * The hub's certificate revocation list: every unexpired certificate of a revoked device, signed by
 * the CA. The broker checks client certificates against it at the handshake, and it is served at
 * GET /api/v1/ca/crl. Rebuilt at start, when a device is revoked, and daily: a CRL past its
 * nextUpdate makes OpenSSL refuse every client certificate, and expired entries drop out.
 */
import type { Clock } from '../../shared/clock.js';
import { x509 } from '../../shared/pki/x509.js';
import type { DeviceRecord, DeviceRepository } from '../store/store.js';
import type { HubCa } from './ca.js';
import { validIssuedCertificates } from './issued-certificates.js';
import { wholeSecond } from './sign.js';

export const CRL_VALIDITY_MS = 7 * 24 * 3600 * 1000;
export const CRL_REFRESH_MS = 24 * 3600 * 1000;

export interface RevokedCertificate {
  serial: string;
  revokedAt: string;
}

export function revokedCertificates(devices: readonly DeviceRecord[], now: number): RevokedCertificate[] {
  return devices.flatMap((d) => (d.revokedAt ? validIssuedCertificates(d.certificates).valid.filter((c) => Date.parse(c.notAfter) > now).map((c) => ({ serial: c.serial, revokedAt: d.revokedAt! })) : []));
}

export async function buildCrl(ca: HubCa, revoked: readonly RevokedCertificate[], now: number): Promise<string> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.certificate.subjectName,
    thisUpdate: wholeSecond(now),
    nextUpdate: wholeSecond(now + CRL_VALIDITY_MS),
    entries: revoked.map((r) => ({ serialNumber: r.serial, revocationDate: new Date(r.revokedAt) })),
    signingKey: ca.signingKey,
    signingAlgorithm: ca.signingAlgorithm,
  });
  // OpenSSL (and so Node's tls `crl` option) reads only the X509 CRL label.
  return crl.toString('pem').replace(/-----(BEGIN|END) CRL-----/g, '-----$1 X509 CRL-----') + '\n';
}

export class RevocationList {
  #pem = '';
  #queue: Promise<unknown> = Promise.resolve();
  #timer: unknown;
  #closed = false;
  readonly #listeners: Array<(pem: string) => void> = [];

  private constructor(private readonly deps: { ca: HubCa; devices: Pick<DeviceRepository, 'list'>; clock: Clock }) {}

  /** Built once before it is returned, so `pem()` always has a CRL. */
  static async open(deps: { ca: HubCa; devices: Pick<DeviceRepository, 'list'>; clock: Clock }): Promise<RevocationList> {
    const list = new RevocationList(deps);
    await list.rebuild();
    return list;
  }

  pem(): string {
    return this.#pem;
  }

  /** Called with each new CRL (the broker's TLS context takes it). */
  onChange(listener: (pem: string) => void): void {
    this.#listeners.push(listener);
  }

  /** One rebuild at a time, each from the store as it is then: the last one wins with the newest data. */
  rebuild(): Promise<string> {
    const run = async () => {
      const now = this.deps.clock.now();
      this.#pem = await buildCrl(this.deps.ca, revokedCertificates(await this.deps.devices.list(), now), now);
      for (const listener of this.#listeners) listener(this.#pem);
      return this.#pem;
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Rebuilds daily until `close()`; `onError` hears a failed rebuild (the previous CRL stays). */
  startRefresh(onError: (err: unknown) => void): void {
    const tick = () => {
      if (this.#closed) return;
      this.#timer = this.deps.clock.setTimeout(() => {
        this.rebuild().catch(onError).finally(tick);
      }, CRL_REFRESH_MS);
      (this.#timer as { unref?: () => void }).unref?.();
    };
    tick();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.deps.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
