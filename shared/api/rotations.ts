/**
 * Rotation of a secret (device token, API key, service key): a new secret, shown once, and the old
 * one still valid for a grace window beside it, so whatever uses it can move over without an outage.
 * Every rotation is recorded on what owns the secret (who, when, until when the old one worked).
 */
import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../duration.js';
import { Actor, Timestamp } from './common.js';

/** The longest grace: an old secret that works for weeks is a second secret, not a rotation. */
export const MAX_KEY_GRACE = '7d';
export const DEFAULT_GRACE = '10m';
/** Views show this many rotations, the newest last. */
export const ROTATIONS_SHOWN = 20;

export const SecretRotate = Type.Object(
  {
    grace: Type.Optional(
      Type.String({
        pattern: DURATION_PATTERN,
        default: DEFAULT_GRACE,
        examples: ['10m', '1h'],
        description: `how long the old secret stays valid beside the new one (0s: not at all); at most ${MAX_KEY_GRACE}`,
      }),
    ),
  },
  { additionalProperties: false },
);
export type SecretRotate = Static<typeof SecretRotate>;

export const PreviousValidUntil = Type.Union([Timestamp, Type.Null()], { description: 'until when the replaced secret still works; null: it stopped at once' });

export const Rotation = Type.Object({ at: Timestamp, by: Actor, previousValidUntil: PreviousValidUntil });
export type Rotation = Static<typeof Rotation>;

/** Optional in the type only, for clients of hubs older than rotation: the hub always answers it. */
export const Rotations = Type.Optional(
  Type.Array(Rotation, { maxItems: ROTATIONS_SHOWN, description: `the last ${ROTATIONS_SHOWN} rotations of its secret, oldest first (never the secret); always present` }),
);
