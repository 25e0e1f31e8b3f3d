/**
 * Checks a device record read from the store before the hub relies on it. Its identity (id, token
 * hashes, labels, enrollment, revocation, rotations, certificates) must hold, or the device is skipped and reported: guessing
 * at a damaged identity could admit the wrong client. What the device said about itself is only a
 * cache of what it re-announces on every connect, so a damaged observation is replaced by an empty
 * one instead.
 */
import { Type } from '@sinclair/typebox';
import { DeviceId } from '../../shared/api/devices.js';
import { DeviceFacts, OfflineReasons, ReportedState } from '../../shared/protocol.js';
import { compileChecker, stringEnum, type Checker } from '../../shared/schema.js';
import { validIssuedCertificates } from '../pki/issued-certificates.js';
import type { DeviceObservation, DeviceRecord } from '../store/store.js';

const NullableText = Type.Union([Type.String(), Type.Null()]);
const Hash = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Actor = Type.Object({ keyId: Type.String(), keyName: Type.String() });

// Labels are checked for shape, not for today's bounds: a device enrolled under looser bounds keeps working.
const StoredIdentity = Type.Object({
  id: DeviceId,
  labels: Type.Record(Type.String(), Type.String()),
  tokenHash: Hash,
  enrolledAt: Type.String(),
  enrolledBy: Actor,
  revokedAt: NullableText,
  observed: Type.Object({}),
  previousTokens: Type.Optional(Type.Array(Type.Object({ hash: Hash, validUntil: Type.String({ format: 'date-time' }) }))),
  rotations: Type.Optional(Type.Array(Type.Object({ at: Type.String(), by: Actor, previousValidUntil: NullableText }))),
  // Checked entry by entry below: a damaged one is dropped, never the device.
  certificates: Type.Optional(Type.Unknown()),
});

const StoredObservation = Type.Object({
  status: Type.Union([stringEnum(['online', 'offline'] as const), Type.Null()]),
  offlineReason: Type.Union([stringEnum(OfflineReasons), Type.Null()]),
  onlineSince: NullableText,
  lastSeen: NullableText,
  facts: Type.Union([DeviceFacts, Type.Null()]),
  gateway: Type.Optional(NullableText),
  reported: Type.Optional(Type.Union([ReportedState, Type.Null()])),
});

export function emptyObservation(): DeviceObservation {
  return { status: null, offlineReason: null, onlineSince: null, lastSeen: null, facts: null };
}

let checkers: { identity: Checker<unknown>; observation: Checker<unknown> } | undefined;

/**
 * `observationReset`: why the observation was replaced by an empty one. `certificatesDropped`: why
 * each damaged certificate entry was left out (the CA lists only well-formed ones; an entry it
 * cannot read would otherwise stop the revocation list being built).
 */
export type StoredDeviceCheck = { ok: true; record: DeviceRecord; observationReset: string | null; certificatesDropped: string[] } | { ok: false; error: string };

export function checkStoredDevice(stored: unknown): StoredDeviceCheck {
  checkers ??= { identity: compileChecker(StoredIdentity), observation: compileChecker(StoredObservation) };
  const identity = checkers.identity(stored);
  if (!identity.ok) return { ok: false, error: identity.error };
  let record = stored as DeviceRecord;
  const certificates = validIssuedCertificates(record.certificates);
  if (certificates.dropped.length > 0) record = { ...record, certificates: certificates.valid };
  const observation = checkers.observation(record.observed);
  if (observation.ok) return { ok: true, record, observationReset: null, certificatesDropped: certificates.dropped };
  return { ok: true, record: { ...record, observed: emptyObservation() }, observationReset: observation.error, certificatesDropped: certificates.dropped };
}
