/**
 * The hub's own server certificates (REST API, MQTT broker), signed by its CA and kept in DATA/tls:
 * reused across restarts while they carry the same names, come from the current CA and have more
 * than a third of their life left; re-issued otherwise, and renewed in a running hub at two thirds
 * of their life (the caller swaps them into the listening server).
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../shared/clock.js';
import { writeFileDurably } from '../../shared/durable-file.js';
import { generateKeyPair, privateKeyPem } from '../../shared/pki/x509.js';
import type { HubCa } from './ca.js';
import { certificateName, normalName, subjectAltNames } from './names.js';
import { signLeaf, wholeSecond } from './sign.js';

export const TLS_DIR = 'tls';
export const HUB_CERTIFICATE_LIFETIME_MS = 90 * 24 * 3600 * 1000;

export interface ServerKeyPair {
  key: string;
  cert: string;
}

export interface HubCertificateOptions {
  dataDir: string;
  /** File stem in DATA/tls: `hub` (REST API) or `mqtt` (broker). */
  name: 'hub' | 'mqtt';
  ca: HubCa;
  names: readonly string[];
  clock: Clock;
  lifetimeMs?: number;
}

function sameNames(certPem: string, wanted: readonly string[]): boolean {
  const have = new Set(subjectAltNames(certPem));
  const want = new Set(wanted.map(normalName));
  return have.size === want.size && [...want].every((n) => have.has(n));
}

/** What is on disk, if it can be used as it is at `now`. */
async function reusable(opts: HubCertificateOptions, keyPath: string, certPath: string, now: number): Promise<(ServerKeyPair & { notBefore: number; notAfter: number }) | undefined> {
  let key: string;
  let certPem: string;
  try {
    [key, certPem] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
  } catch {
    return undefined;
  }
  try {
    const cert = new X509Certificate(certPem);
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    const ca = new X509Certificate(opts.ca.certificatePem);
    const matches = createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' }).equals(cert.publicKey.export({ type: 'spki', format: 'der' }));
    const fresh = notAfter - now > (notAfter - notBefore) / 3;
    if (matches && fresh && cert.checkIssued(ca) && cert.verify(ca.publicKey) && sameNames(certPem, opts.names)) return { key, cert: certPem, notBefore, notAfter };
  } catch {
    // Damaged files are simply replaced: the hub made them, and nothing else refers to them.
  }
  return undefined;
}

/** The certificate and key to serve, from DATA/tls or issued now (key written first, then the certificate). */
export async function ensureHubCertificate(opts: HubCertificateOptions): Promise<ServerKeyPair & { notBefore: number; notAfter: number; issued: boolean }> {
  const dir = join(opts.dataDir, TLS_DIR);
  const keyPath = join(dir, `${opts.name}.key`);
  const certPath = join(dir, `${opts.name}.crt`);
  const now = opts.clock.now();
  const found = await reusable(opts, keyPath, certPath, now);
  if (found) return { ...found, issued: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = await generateKeyPair();
  const notBefore = wholeSecond(now);
  // Nothing the CA signs outlives it.
  const notAfter = wholeSecond(Math.min(now + (opts.lifetimeMs ?? HUB_CERTIFICATE_LIFETIME_MS), opts.ca.certificate.notAfter.getTime()));
  const signed = await signLeaf(opts.ca, {
    commonName: opts.names[0] ?? 'edgeml hub',
    names: opts.names.map(certificateName),
    publicKey: keys.publicKey,
    usage: 'serverAuth',
    notBefore,
    notAfter,
  });
  const key = privateKeyPem(keys.privateKey);
  await writeFileDurably(keyPath, key, 0o600);
  await writeFileDurably(certPath, signed.pem, 0o644);
  return { key, cert: signed.pem, notBefore: notBefore.getTime(), notAfter: notAfter.getTime(), issued: true };
}

/**
 * Keeps a hub certificate current in a running hub: at two thirds of its life a new one is issued
 * and handed to `onRenew` (server.setSecureContext). A failed renewal is retried hourly.
 */
export async function startHubCertificate(
  opts: HubCertificateOptions,
  onRenew: (pair: ServerKeyPair) => void,
  onError: (err: unknown) => void,
): Promise<{ current: ServerKeyPair; issued: boolean; close(): void }> {
  let timer: unknown;
  let closed = false;
  const schedule = (pair: { notBefore: number; notAfter: number }, retry = false) => {
    if (closed) return;
    const at = retry ? opts.clock.now() + 3600_000 : pair.notBefore + ((pair.notAfter - pair.notBefore) * 2) / 3;
    // setTimeout takes at most 2^31-1 ms (~24.8 days): a later renewal waits in steps.
    const wait = Math.min(Math.max(at - opts.clock.now(), 0), 2 ** 31 - 1);
    timer = opts.clock.setTimeout(() => {
      if (opts.clock.now() < at) return schedule(pair, retry);
      ensureHubCertificate(opts).then(
        (next) => {
          if (closed) return;
          onRenew(next);
          schedule(next);
        },
        (err: unknown) => {
          onError(err);
          schedule(pair, true);
        },
      );
    }, wait);
    (timer as { unref?: () => void }).unref?.();
  };
  const first = await ensureHubCertificate(opts);
  schedule(first);
  return {
    current: { key: first.key, cert: first.cert },
    issued: first.issued,
    close: () => {
      closed = true;
      if (timer !== undefined) opts.clock.clearTimeout(timer);
    },
  };
}
