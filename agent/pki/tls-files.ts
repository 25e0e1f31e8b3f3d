/**
 * DATA/tls/: `gateway.pem` and `client.pem` (mode 600), each holding the device key, its
 * certificate and the CA that signed it, written in one durable write: a crash leaves the old set
 * or the new one, never a key without its certificate. `ca.crt` is the CA of the last answer
 * (public), trusted for an mqtts:// broker without --hub-ca. The earlier layout (`gateway.key` +
 * `gateway.crt` + `ca.crt`) is read once and moved into the one file.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../shared/durable-file.js';
import type { Logger } from '../../shared/logger.js';
import type { CertificatePurpose } from '../../shared/protocol.js';
import { checkMaterial, type TlsMaterial } from './material.js';

export const CA_FILE = 'ca.crt';

/** The one file of a purpose: key, certificate, CA. */
export function materialFile(dir: string, purpose: CertificatePurpose): string {
  return join(dir, `${purpose}.pem`);
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

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** Key, certificate and CA out of one file; a missing part is an empty string (checkMaterial refuses it). */
function splitMaterial(text: string): { key: string; certificate: string; ca: string } {
  const blocks = [...text.matchAll(PEM_BLOCK)].map((m) => ({ type: m[1], pem: `${m[0]}\n` }));
  const certificates = blocks.filter((b) => b.type === 'CERTIFICATE').map((b) => b.pem);
  return { key: blocks.find((b) => b.type === 'PRIVATE KEY')?.pem ?? '', certificate: certificates[0] ?? '', ca: certificates[1] ?? '' };
}

const withNewline = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);

/** The earlier layout's parts, when all of them are there. */
async function readLegacy(dir: string, purpose: CertificatePurpose): Promise<{ key: string; certificate: string; ca: string } | undefined> {
  const [key, certificate, ca] = await Promise.all([`${purpose}.key`, `${purpose}.crt`, CA_FILE].map((name) => readIfThere(join(dir, name))));
  return key === undefined || certificate === undefined || ca === undefined ? undefined : { key, certificate, ca };
}

/** The stored material if it is whole, matches and is not expired; otherwise null (and why is logged). */
export async function loadMaterial(dir: string, purpose: CertificatePurpose, now: number, logger: Logger): Promise<TlsMaterial | null> {
  const text = await readIfThere(materialFile(dir, purpose));
  const parts = text === undefined ? await readLegacy(dir, purpose) : splitMaterial(text);
  if (parts === undefined) return null;
  let material: TlsMaterial;
  try {
    material = checkMaterial(purpose, parts, now);
  } catch (err) {
    logger.warn({ purpose, reason: (err as Error).message }, 'discarded the stored certificate; asking the hub for a new one');
    return null;
  }
  if (text === undefined) {
    // Good as it is: a move that fails is tried again at the next start.
    try {
      await saveMaterial(dir, material);
      await Promise.all([`${purpose}.key`, `${purpose}.crt`].map((name) => rm(join(dir, name), { force: true })));
      logger.info({ purpose, file: materialFile(dir, purpose) }, 'moved the stored certificate and its key into one file');
    } catch (err) {
      logger.warn({ purpose, err: (err as Error).message }, 'could not move the stored certificate into one file; using it as it is');
    }
  }
  return material;
}

export async function saveMaterial(dir: string, material: TlsMaterial): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // One write: the key never lands without its certificate.
  await writeFileDurably(materialFile(dir, material.purpose), [material.key, material.certificate, material.ca].map(withNewline).join(''), 0o600);
  await writeFileDurably(join(dir, CA_FILE), material.ca, 0o644);
}
