/**
 * Every certificate the hub's CA issued to a device, in memory: loaded from the store at start and
 * kept by the issuer in the very store write that records a certificate. Two questions need it
 * faster than a store scan, and one of them at every MQTT handshake:
 * - which device a client certificate's serial was issued to (the broker admits only those: an
 *   operator CA's other certificates, or a device's gateway certificate, are no MQTT identity);
 * - which other device holds a gateway name (no device gets a certificate for another's name).
 */
import { Type } from '@sinclair/typebox';
import { compileChecker, stringEnum, type Checker } from '../../shared/schema.js';
import type { DeviceRecord, IssuedCertificate } from '../store/store.js';
import { isSharedName, normalName } from './names.js';

const StoredCertificate = Type.Object({
  serial: Type.String({ pattern: '^[0-9A-F]+$' }),
  purpose: stringEnum(['gateway', 'client'] as const),
  names: Type.Array(Type.String()),
  notBefore: Type.String(),
  notAfter: Type.String(),
});
let checkCertificate: Checker<unknown> | undefined;

/**
 * The stored certificate entries that have their shape; the others are `dropped` (one reason each).
 * A damaged entry must not stop the hub or its CRL: it is left out and reported.
 */
export function validIssuedCertificates(stored: unknown): { valid: IssuedCertificate[]; dropped: string[] } {
  checkCertificate ??= compileChecker(StoredCertificate);
  const valid: IssuedCertificate[] = [];
  const dropped: string[] = [];
  if (stored === undefined) return { valid, dropped };
  if (!Array.isArray(stored)) return { valid, dropped: ['certificates is not a list'] };
  stored.forEach((entry: unknown, i) => {
    const checked = checkCertificate!(entry);
    if (checked.ok) valid.push(entry as IssuedCertificate);
    else dropped.push(`certificates[${i}]: ${checked.error}`);
  });
  return { valid, dropped };
}

export interface IssuedEntry {
  deviceId: string;
  purpose: IssuedCertificate['purpose'];
  /** Normalised (names.ts normalName). */
  names: readonly string[];
  notAfter: number;
}

/** Serials as Node's TLS peer certificate prints them: uppercase hex without leading zeros. */
export function normalSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+(?=.)/, '');
}

export class IssuedCertificates {
  readonly #bySerial = new Map<string, IssuedEntry>();
  readonly #byDevice = new Map<string, readonly IssuedCertificate[]>();
  /** name → serials of unexpired-when-recorded gateway certificates carrying it. */
  readonly #gatewayNames = new Map<string, Set<string>>();

  /** From stored devices; `certificates` must have been checked (device-record-check.ts validIssuedCertificates). */
  static fromDevices(devices: ReadonlyArray<Pick<DeviceRecord, 'id' | 'certificates'>>): IssuedCertificates {
    const index = new IssuedCertificates();
    for (const d of devices) index.setDevice(d.id, d.certificates ?? []);
    return index;
  }

  /** The device's certificates are now exactly `certificates` (what its store record holds). */
  setDevice(deviceId: string, certificates: readonly IssuedCertificate[]): void {
    for (const old of this.#byDevice.get(deviceId) ?? []) {
      const serial = normalSerial(old.serial);
      const entry = this.#bySerial.get(serial);
      this.#bySerial.delete(serial);
      for (const name of entry?.names ?? []) {
        const holders = this.#gatewayNames.get(name);
        holders?.delete(serial);
        if (holders?.size === 0) this.#gatewayNames.delete(name);
      }
    }
    for (const c of certificates) {
      const serial = normalSerial(c.serial);
      const names = c.purpose === 'gateway' ? c.names.map(normalName) : [];
      this.#bySerial.set(serial, { deviceId, purpose: c.purpose, names, notAfter: Date.parse(c.notAfter) });
      for (const name of names) {
        let holders = this.#gatewayNames.get(name);
        if (!holders) this.#gatewayNames.set(name, (holders = new Set()));
        holders.add(serial);
      }
    }
    if (certificates.length > 0) this.#byDevice.set(deviceId, [...certificates]);
    else this.#byDevice.delete(deviceId);
  }

  certificatesOf(deviceId: string): readonly IssuedCertificate[] {
    return this.#byDevice.get(deviceId) ?? [];
  }

  /** The device a client certificate with this serial was issued to, while it is unexpired at `now`. */
  clientDevice(serial: string, now: number): string | undefined {
    const entry = this.#bySerial.get(normalSerial(serial));
    return entry && entry.purpose === 'client' && entry.notAfter > now ? entry.deviceId : undefined;
  }

  /**
   * Another device than `deviceId` that holds `name` in an unexpired gateway certificate and is
   * still active. Loopback names are everyone's: never held.
   */
  gatewayNameHolder(name: string, deviceId: string, now: number, isActive: (id: string) => boolean): string | undefined {
    const n = normalName(name);
    if (isSharedName(n)) return undefined;
    for (const serial of this.#gatewayNames.get(n) ?? []) {
      const entry = this.#bySerial.get(serial);
      if (entry && entry.deviceId !== deviceId && entry.notAfter > now && isActive(entry.deviceId)) return entry.deviceId;
    }
    return undefined;
  }
}
