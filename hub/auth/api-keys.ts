/**
 * API keys: `emk_<id>_<secret>`. The id finds the record; only a hash of the secret is stored
 * (secrets.ts). Scopes nest: admin ⊃ deploy ⊃ read. A rotation gives the same id a new secret; the
 * old one keeps working for a grace (secret-rotation.ts).
 */
import { randomBytes } from 'node:crypto';
import type { ApiKeyCreated, ApiKeyInfo, ApiKeyRotated } from '../../shared/api/apikeys.js';
import type { Scope } from '../../shared/api/common.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { ActorRecord, ApiKeyRecord, ApiKeyRepository } from '../store/store.js';
import { hashSecret, newSecret } from '../../shared/secrets.js';
import { graceEnd, matchesCurrentOrPrevious, previousAfterRotation, recordRotation, rotationMadeBy, rotationViews } from './secret-rotation.js';

const KEY_PATTERN = /^emk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const SCOPE_RANK: Record<Scope, number> = { read: 0, deploy: 1, admin: 2 };

function unauthenticated(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_UNAUTHENTICATED, message, { httpStatus: 401 });
}

export function publicInfo(record: ApiKeyRecord): ApiKeyInfo {
  const { hash: _hash, previousHashes: _previous, rotations, ...info } = record;
  return { ...info, rotations: rotationViews(rotations) };
}

function keyText(id: string, secret: string): string {
  return `emk_${id}_${secret}`;
}

export function actorOf(record: ApiKeyRecord): ActorRecord {
  return { keyId: record.id, keyName: record.name };
}

export class ApiKeyAuthority {
  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly clock: Clock,
  ) {}

  /** The key behind an `Authorization: Bearer …` header, or 401 saying what is wrong. */
  async authenticate(authorization: string | undefined): Promise<ApiKeyRecord> {
    if (!authorization) throw unauthenticated('this route needs an API key: send "Authorization: Bearer KEY"');
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!bearer) throw unauthenticated('the Authorization header must be "Bearer KEY"');
    const parts = KEY_PATTERN.exec(bearer[1]!);
    const record = parts ? await this.keys.get(parts[1]!) : undefined;
    // One message for malformed, unknown and wrong keys: no hint about which ids exist.
    if (!matchesCurrentOrPrevious(record?.hash, record?.previousHashes, parts?.[2] ?? '', this.clock.now()) || !record) throw unauthenticated('the API key is not valid');
    if (record.revokedAt) throw unauthenticated(`the API key ${record.id} (${record.name}) was revoked`);
    return record;
  }

  authorize(record: ApiKeyRecord, required: Scope): void {
    if (SCOPE_RANK[record.scope] >= SCOPE_RANK[required]) return;
    throw new EdgemlError(ErrorCodes.HUB_FORBIDDEN, `this route needs the ${required} scope; API key ${record.id} (${record.name}) has ${record.scope}`, {
      httpStatus: 403,
    });
  }

  /** A new key and its record, not stored yet; `secret` is random unless a retryable create derived it. */
  mint(name: string, scope: Scope, createdBy: ActorRecord | null, secret = newSecret()): { record: ApiKeyRecord; key: string } {
    const id = randomBytes(6).toString('hex');
    const record: ApiKeyRecord = { id, name, scope, hash: hashSecret(secret), createdAt: new Date(this.clock.now()).toISOString(), createdBy, revokedAt: null };
    return { record, key: keyText(id, secret) };
  }

  async create(name: string, scope: Scope, createdBy: ActorRecord | null, secret?: string): Promise<ApiKeyCreated> {
    const { record, key } = this.mint(name, scope, createdBy, secret);
    await this.keys.add(record);
    return { ...publicInfo(record), key };
  }

  async list(): Promise<ApiKeyInfo[]> {
    return (await this.keys.list()).map(publicInfo);
  }

  /** The key `made` marks as created, answered again with its (derived) secret. */
  async createdBy(made: (actor: ActorRecord | null) => boolean, secret: string): Promise<{ by: ActorRecord; created: ApiKeyCreated } | undefined> {
    const record = (await this.keys.list()).find((k) => made(k.createdBy));
    return record?.createdBy ? { by: record.createdBy, created: { ...publicInfo(record), key: keyText(record.id, secret) } } : undefined;
  }

  /**
   * Same id, a new secret; the old one keeps working until the grace ends (none: it stops at once).
   * A revoked key stays revoked: 409. `secret` is random unless a retryable rotation derived it.
   */
  async rotate(id: string, grace: string, actor: ActorRecord, secret = newSecret()): Promise<ApiKeyRotated> {
    const now = this.clock.now();
    const until = graceEnd(grace, now);
    const record = await this.keys.update(id, (r) => {
      if (r.revokedAt) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `API key ${r.id} (${r.name}) is revoked: a revoked key cannot be rotated`, { httpStatus: 409 });
      r.previousHashes = previousAfterRotation(r.previousHashes, r.hash, until, now).previous;
      r.hash = hashSecret(secret);
      r.rotations = recordRotation(r.rotations, { at: new Date(now).toISOString(), by: actor, previousValidUntil: until }, now);
    });
    return { ...publicInfo(record), key: keyText(id, secret), previousValidUntil: until };
  }

  /** The rotation `made` marks, answered again with its (derived) secret. */
  async rotatedBy(made: (actor: ActorRecord) => boolean, secret: string): Promise<{ by: ActorRecord; rotated: ApiKeyRotated } | undefined> {
    for (const record of await this.keys.list()) {
      const rotation = rotationMadeBy(record.rotations, made);
      if (rotation) return { by: rotation.by, rotated: { ...publicInfo(record), key: keyText(record.id, secret), previousValidUntil: rotation.previousValidUntil } };
    }
    return undefined;
  }

  async revoke(id: string): Promise<ApiKeyInfo> {
    return publicInfo(await this.keys.revoke(id, new Date(this.clock.now()).toISOString()));
  }
}
