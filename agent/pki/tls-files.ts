/**
 * DATA/tls/: `gateway.key` + `gateway.crt`, `client.key` + `client.crt` (keys 0600) and `ca.crt`,
 * the CA of the last answer. Each write is durable; a crash between the key and its certificate
 * leaves a pair that does not match, which `loadMaterial` discards (and the keeper asks again).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../shared/durable-file.js';
import type { Logger } from '../../shared/logger.js';
import type { CertificatePurpose } from '../../shared/protocol.js';
import { checkMaterial, type TlsMaterial } from './material.js';

export const CA_FILE = 'ca.crt';

export function tlsFiles(dir: string, purpose: CertificatePurpose): { key: string; certificate: string; ca: string } {
  return { key: join(dir, `${purpose}.key`), certificate: join(dir, `${purpose}.crt`), ca: join(dir, CA_FILE) };
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The stored CA (from the hub's last answer), if any. */
export async function readStoredCa(dir: string): Promise<string | undefined> {
  return readIfThere(join(dir, CA_FILE));
}

/** The stored material if it is whole, matches and is not expired; otherwise null (and why is logged). */
export async function loadMaterial(dir: string, purpose: CertificatePurpose, now: number, logger: Logger): Promise<TlsMaterial | null> {
  const files = tlsFiles(dir, purpose);
  const [key, certificate, ca] = await Promise.all([readIfThere(files.key), readIfThere(files.certificate), readIfThere(files.ca)]);
  if (key === undefined || certificate === undefined || ca === undefined) return null;
  try {
    return checkMaterial(purpose, { key, certificate, ca }, now);
  } catch (err) {
    logger.warn({ purpose, reason: (err as Error).message }, 'discarded the stored certificate; asking the hub for a new one');
    return null;
  }
}

export async function saveMaterial(dir: string, material: TlsMaterial): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = tlsFiles(dir, material.purpose);
  // Key first: a crash before the certificate lands leaves a mismatch, never a certificate without its key.
  await writeFileDurably(files.key, material.key, 0o600);
  await writeFileDurably(files.certificate, material.certificate, 0o644);
  await writeFileDurably(files.ca, material.ca, 0o644);
}
