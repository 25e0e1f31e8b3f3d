import { Type, type Static } from '@sinclair/typebox';
import { Actor, ScopeSchema, Timestamp } from './common.js';
import { PreviousValidUntil, Rotations } from './rotations.js';

export const API_KEY_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$';

export const ApiKeyCreate = Type.Object(
  {
    name: Type.String({ pattern: API_KEY_NAME_PATTERN, examples: ['ci-pipeline'], description: 'what the key is for' }),
    scope: ScopeSchema,
  },
  { additionalProperties: false },
);
export type ApiKeyCreate = Static<typeof ApiKeyCreate>;

export const ApiKeyInfo = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scope: ScopeSchema,
  createdAt: Timestamp,
  createdBy: Type.Union([Actor, Type.Null()], { description: 'null for the admin key made at first start' }),
  revokedAt: Type.Union([Timestamp, Type.Null()]),
  rotations: Rotations,
});
export type ApiKeyInfo = Static<typeof ApiKeyInfo>;

export const ApiKeyCreated = Type.Composite([ApiKeyInfo, Type.Object({ key: Type.String({ description: 'shown only in this answer; the hub keeps a hash' }) })]);
export type ApiKeyCreated = Static<typeof ApiKeyCreated>;

export const ApiKeyRotated = Type.Composite([ApiKeyCreated, Type.Object({ previousValidUntil: PreviousValidUntil })]);
export type ApiKeyRotated = Static<typeof ApiKeyRotated>;

export const ApiKeyList = Type.Object({ keys: Type.Array(ApiKeyInfo) });
export type ApiKeyList = Static<typeof ApiKeyList>;

/** The key a request was made with, as the portal's sign-in check shows it: never the key or its hash. */
export const WhoAmI = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scope: ScopeSchema,
});
export type WhoAmI = Static<typeof WhoAmI>;
