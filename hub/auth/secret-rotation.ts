/**
 * What every rotation of a bearer secret shares (device tokens, API keys, service keys): the grace
 * a request asks for, the replaced hashes still valid beside the current one, and the record of
 * each rotation kept on what owns the secret. Only hashes and times are kept: never a secret.
 */
import { MAX_KEY_GRACE, ROTATIONS_SHOWN, type Rotation } from '../../shared/api/rotations.js';
import { parseDuration } from '../../shared/duration.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { secretMatches } from '../../shared/secrets.js';
import type { ActorRecord, PreviousSecret, RotationRecord } from '../store/store.js';

/** Changes made under an Idempotency-Key are answered again to retries for this long (at least 24 h). */
export const RETRY_MEMORY_MS = 48 * 3_600_000;
/** Rotations in a row within one grace each leave a secret behind; nobody needs more than these. */
export const MAX_PREVIOUS_SECRETS = 8;

/** Until when the replaced secret stays valid (null: not at all); 400 above MAX_KEY_GRACE. */
export function graceEnd(grace: string, now: number): string | null {
  const ms = parseDuration(grace);
  if (ms > parseDuration(MAX_KEY_GRACE)) throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `body.grace: at most ${MAX_KEY_GRACE} (got ${grace})`, { httpStatus: 400 });
  return ms > 0 ? new Date(now + ms).toISOString() : null;
}

export function livePrevious(previous: readonly PreviousSecret[] | undefined, now: number): PreviousSecret[] {
  return (previous ?? []).filter((p) => Date.parse(p.validUntil) > now);
}

/** What a rotation leaves of the replaced secrets, and whether one that worked until now stopped. */
export interface RotatedSecrets {
  previous: PreviousSecret[];
  /** The replaced current secret had no grace, or an earlier one was dropped: connections made with it must go. */
  ended: boolean;
}

/**
 * The replaced secrets after a rotation: `hash` until `until` if it has a grace, and the earlier
 * ones, none valid beyond the new grace (a rotation with a shorter grace, or none, also ends the
 * older secrets: whoever rotates at once because a secret leaked means all of them), at most
 * MAX_PREVIOUS_SECRETS. The one function for device tokens, API keys and service keys.
 */
export function previousAfterRotation(previous: readonly PreviousSecret[] | undefined, hash: string, until: string | null, now: number): RotatedSecrets {
  const cap = until === null ? now : Date.parse(until);
  const capped = (previous ?? []).map((p) => (Date.parse(p.validUntil) > cap ? { hash: p.hash, validUntil: new Date(cap).toISOString() } : p));
  const kept = (until ? [...livePrevious(capped, now), { hash, validUntil: until }] : livePrevious(capped, now)).slice(-MAX_PREVIOUS_SECRETS);
  // Everything that was listed, and the current secret: fewer kept means one of them stopped here.
  return { previous: kept, ended: kept.length < (previous ?? []).length + 1 };
}

/** The current secret, or a replaced one within its grace; every hash is compared, so the time does not tell which. */
export function matchesCurrentOrPrevious(hash: string | undefined, previous: readonly PreviousSecret[] | undefined, secret: string, now: number): boolean {
  let matched = secretMatches(hash, secret);
  for (const p of livePrevious(previous, now)) matched = secretMatches(p.hash, secret) || matched;
  return matched;
}

/** The records with `rotation` added: the ones shown, and older ones whose Idempotency-Key mark a retry may still need. */
export function recordRotation(rotations: readonly RotationRecord[] | undefined, rotation: RotationRecord, now: number): RotationRecord[] {
  const all = [...(rotations ?? []), rotation];
  return all.filter((r, i) => i >= all.length - ROTATIONS_SHOWN || (r.by.idempotency !== undefined && Date.parse(r.at) > now - RETRY_MEMORY_MS));
}

export function rotationViews(rotations: readonly RotationRecord[] | undefined): Rotation[] {
  return (rotations ?? []).slice(-ROTATIONS_SHOWN).map((r) => ({ at: r.at, by: { keyId: r.by.keyId, keyName: r.by.keyName }, previousValidUntil: r.previousValidUntil }));
}

/** The rotation `made` marks (hub/http/idempotency.ts), if any. */
export function rotationMadeBy(rotations: readonly RotationRecord[] | undefined, made: (actor: ActorRecord) => boolean): RotationRecord | undefined {
  return rotations?.findLast((r) => made(r.by));
}
