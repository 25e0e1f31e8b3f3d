/**
 * Names in certificates: which the hub's own certificates carry, and which are loopback (the same
 * on every machine, so no device can take them from the hub elsewhere).
 */
import { X509Certificate } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { isLoopbackHost } from '../../shared/address.js';

export interface CertificateName {
  type: 'dns' | 'ip';
  value: string;
}

export function certificateName(value: string): CertificateName {
  return { type: isIP(value) === 0 ? 'dns' : 'ip', value };
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A DNS name as certificates carry it (lowercase letters, digits, hyphens; no wildcard). */
export function isDnsName(name: string): boolean {
  return DNS_NAME.test(name);
}

/** A name the hub may put in its own certificates: a DNS name, `*.` and a DNS name, or an IP address. */
export function isHubCertificateName(name: string): boolean {
  const n = name.toLowerCase();
  return isIP(n) !== 0 || isDnsName(n.startsWith('*.') ? n.slice(2) : n);
}

/**
 * One spelling per name, so names from configs, CSRs and parsed certificates compare equal: DNS
 * names lowercase without a final dot, IP addresses in canonical form (IPv6 compressed; Node prints
 * IPv6 SANs expanded).
 */
export function normalName(name: string): string {
  const n = name.trim().toLowerCase();
  if (isIP(n) === 0) return n.replace(/\.$/, '');
  return new URL(`http://${n.includes(':') ? `[${n}]` : n}/`).hostname.replace(/^\[|\]$/g, '');
}

/**
 * The entry of `hubNames` that covers `name`, if any: the same name, or a wildcard `*.x` for a name
 * with exactly one label before `.x` (as TLS clients match it).
 */
export function hubNameCovering(name: string, hubNames: readonly string[]): string | undefined {
  const n = normalName(name);
  const dot = n.indexOf('.');
  const parent = isIP(n) === 0 && dot > 0 ? n.slice(dot + 1) : undefined;
  return hubNames.find((h) => {
    const hub = normalName(h);
    return hub === n || (parent !== undefined && hub === `*.${parent}`);
  });
}

/** The DNS names and IP addresses in a certificate's subjectAltName, as node:crypto prints it. */
export function subjectAltNames(certificatePem: string): string[] {
  const san = new X509Certificate(certificatePem).subjectAltName ?? '';
  return san
    .split(', ')
    .map((entry) => /^(?:DNS|IP Address):(.+)$/.exec(entry)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(normalName);
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

export function isLoopbackName(name: string): boolean {
  return isLoopbackHost(name.toLowerCase());
}

// Private, shared-address-space and link-local ranges: every site's LAN reuses them.
const LOCAL_ADDRESSES = new BlockList();
for (const [net, prefix] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['169.254.0.0', 16]] as const) LOCAL_ADDRESSES.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['fc00::', 7], ['fe80::', 10]] as const) LOCAL_ADDRESSES.addSubnet(net, prefix, 'ipv6');

/**
 * A name that cannot belong to one device: loopback, and private or link-local addresses, which
 * devices on different networks share (two sites' gateways may both be 192.168.1.20). Clients that
 * reach a device by such a name learn which device answered from the certificate's CN (`edgeml
 * score` checks it).
 */
export function isSharedName(name: string): boolean {
  if (isLoopbackName(name)) return true;
  const family = isIP(name);
  return family !== 0 && LOCAL_ADDRESSES.check(name, family === 4 ? 'ipv4' : 'ipv6');
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
  return [...new Set(names.map(normalName))];
}

/** `a,b` of --tls-san as a list. */
export function splitSan(tlsSan: string | undefined): string[] {
  return tlsSan === undefined ? [] : tlsSan.split(',').filter((n) => n.length > 0);
}
