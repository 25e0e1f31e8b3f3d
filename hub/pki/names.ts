/**
 * Names in certificates: which the hub's own certificates carry, and which are loopback (the same
 * on every machine, so no device can take them from the hub elsewhere).
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { isLoopbackHost } from '../../shared/address.js';

export interface CertificateName {
  type: 'dns' | 'ip';
  value: string;
}

export function certificateName(value: string): CertificateName {
  return { type: isIP(value) === 0 ? 'dns' : 'ip', value };
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

export function isLoopbackName(name: string): boolean {
  return isLoopbackHost(name.toLowerCase());
}

/** The names a server listening on `host` is reached under, plus `extra` (--tls-san). */
export function listenNames(host: string, extra: readonly string[] = []): string[] {
  const names: string[] = [];
  if (WILDCARD_HOSTS.has(host)) {
    names.push('localhost');
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.push(a.address.replace(/%.*$/, ''));
  } else if (isLoopbackName(host)) {
    names.push('localhost', '127.0.0.1', '::1', host);
  } else {
    names.push(host);
  }
  names.push(...extra);
  return [...new Set(names.map((n) => n.toLowerCase()))];
}

/** `a,b` of --tls-san as a list. */
export function splitSan(tlsSan: string | undefined): string[] {
  return tlsSan === undefined ? [] : tlsSan.split(',').filter((n) => n.length > 0);
}
