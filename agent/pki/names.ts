/**
 * The names a device's gateway serves under, for its certificate's subjectAltName: the host of the
 * advertised URL, the bound host (every interface address when bound to all of them), and the
 * loopback names when it answers on loopback. A name missing here is a TLS name mismatch at a client.
 */
import { isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { isLoopbackHost, unbracket } from '../../shared/address.js';

export interface SubjectName {
  type: 'dns' | 'ip';
  value: string;
}

/** The hub refuses a request with more names than this (issue 16 policy). */
export const MAX_GATEWAY_NAMES = 32;

const LOOPBACK_NAMES: SubjectName[] = [
  { type: 'dns', value: 'localhost' },
  { type: 'ip', value: '127.0.0.1' },
  { type: 'ip', value: '::1' },
];

export interface GatewayNameSources {
  /** The bound gateway host (`--gateway`'s HOST). */
  host: string;
  advertiseUrl?: string | undefined;
  /** os.networkInterfaces(), injected. */
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** Comparable: `dns:localhost`, `ip:::1` (DNS names are case-free). */
export function nameKey(name: { type: string; value: string }): string {
  return `${name.type}:${name.value.toLowerCase()}`;
}

function nameOf(host: string): SubjectName {
  return { type: isIP(host) === 0 ? 'dns' : 'ip', value: host };
}

function interfaceAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>, ipv4Only: boolean): SubjectName[] {
  return Object.values(interfaces)
    .flatMap((list) => list ?? [])
    // 0.0.0.0 accepts no IPv6; a link-local address is unusable in a URL without its zone.
    .filter((a) => (ipv4Only ? a.family === 'IPv4' : true) && !a.address.toLowerCase().startsWith('fe80:'))
    .map((a) => ({ type: 'ip' as const, value: a.address }));
}

/** In order of importance (advertised first), without repeats, at most MAX_GATEWAY_NAMES. */
export function gatewayNames({ host, advertiseUrl, interfaces }: GatewayNameSources): SubjectName[] {
  const names: SubjectName[] = [];
  if (advertiseUrl !== undefined) names.push(nameOf(unbracket(new URL(advertiseUrl).hostname)));
  const all = host === '0.0.0.0' || host === '::';
  if (all || isLoopbackHost(host)) names.push(...LOOPBACK_NAMES);
  names.push(...(all ? interfaceAddresses(interfaces, host === '0.0.0.0') : [nameOf(host)]));
  const seen = new Set<string>();
  return names
    .filter((n) => {
      const key = nameKey(n);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, MAX_GATEWAY_NAMES);
}
