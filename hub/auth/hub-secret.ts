/**
 * The hub's own secret (32 random bytes in DATA/hub.secret, 0600, made at first start). Secrets an
 * answer carries (API keys, device tokens, service keys) are stored only as hashes, so a retried
 * create could not answer its secret again; with an Idempotency-Key the secret is instead derived
 * from this one, the caller and the key, and a retry derives the same secret again.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../shared/durable-file.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

export const HUB_SECRET_FILE = 'hub.secret';
const SECRET_TEXT = /^([A-Za-z0-9_-]{43})\n?$/;

export async function ensureHubSecret(dataDir: string): Promise<Buffer> {
  const file = join(dataDir, HUB_SECRET_FILE);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text === undefined) {
    const secret = randomBytes(32);
    await writeFileDurably(file, `${secret.toString('base64url')}\n`, 0o600);
    return secret;
  }
  const match = SECRET_TEXT.exec(text);
  if (!match) {
    // A new secret would silently change every secret a retry answers: say so instead.
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `${file} is damaged (expected 32 bytes, base64url); delete it to make a new one (retries of creates made before then will then answer other secrets)`);
  }
  return Buffer.from(match[1]!, 'base64url');
}

/** A secret shaped like `newSecret()` (43 base64url characters), the same for the same parts. */
export function deriveSecret(hubSecret: Buffer, parts: readonly string[]): string {
  // NUL cannot occur in a header, a key id or a path: the parts cannot run into each other.
  return createHmac('sha256', hubSecret).update(parts.join('\0')).digest('base64url');
}
