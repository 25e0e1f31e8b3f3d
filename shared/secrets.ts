/**
 * Bearer secrets (API keys, device tokens, service keys): 256 random bits, stored only as a sha256.
 * A fast hash is enough for secrets with that much entropy: there is nothing to brute-force.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time; a missing record (`undefined`) costs the same as a wrong secret. */
export function secretMatches(hashHex: string | undefined, secret: string): boolean {
  const expected = hashHex ? Buffer.from(hashHex, 'hex') : Buffer.alloc(32);
  const given = Buffer.from(hashSecret(secret), 'hex');
  return expected.length === given.length && timingSafeEqual(expected, given) && hashHex !== undefined;
}
