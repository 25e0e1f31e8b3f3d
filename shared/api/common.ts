/**
 * The REST contract between the hub and its clients (the CLI, CI pipelines): names, patterns and
 * body shapes. The hub validates with these schemas and they produce the OpenAPI document.
 */
import { Type } from '@sinclair/typebox';
import { stringEnum } from '../schema.js';

export { API_PREFIX } from './prefix.js';

export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }) },
  { description: 'Every error answer has this shape.' },
);

/**
 * Model and manifest names: lowercase, because they become parts of image names later (Docker
 * repository components are lowercase `[a-z0-9._-]`).
 */
export const NAME_PATTERN = '^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$';
export const NAME_EXAMPLES = ['resnet50', 'fraud-detector.v2'];
export const Name = Type.String({ pattern: NAME_PATTERN, examples: NAME_EXAMPLES, description: 'lowercase letters, digits, `.`, `_`, `-`; 1–64 characters' });

/** Aliases start with a letter, so `3` always means a version; `latest` is reserved. */
export const ALIAS_PATTERN = '^(?!latest$)[a-z](?:[a-z0-9._-]{0,30}[a-z0-9])?$';
export const ALIAS_EXAMPLES = ['production', 'staging'];
export const Alias = Type.String({ pattern: ALIAS_PATTERN, examples: ALIAS_EXAMPLES, description: 'starts with a letter; `latest` is reserved' });

export const Version = Type.Integer({ minimum: 1, description: 'version number, 1, 2, …' });

/** A version in a path: `3`, `latest`, or `@ALIAS`. */
export const VERSION_REF_PATTERN = '^(?:[1-9][0-9]{0,8}|latest|@[a-z](?:[a-z0-9._-]{0,30}[a-z0-9])?)$';
export const VersionRef = Type.String({ pattern: VERSION_REF_PATTERN, examples: ['3', 'latest', '@production'] });

export const DIGEST_PATTERN = '^sha256:[0-9a-f]{64}$';
export const Digest = Type.String({ pattern: DIGEST_PATTERN, examples: ['sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae'] });

export const TAG_KEY_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$';
// additionalProperties: a pattern-keyed record alone only checks the keys that match the pattern.
export const Tags = Type.Record(Type.String({ pattern: TAG_KEY_PATTERN }), Type.String({ maxLength: 256 }), {
  additionalProperties: false,
  maxProperties: 64,
  description: 'free-form key=value labels (at most 64; keys of 1–63 letters, digits, `.`, `_`, `/`, `-`)',
});

export const Timestamp = Type.String({ format: 'date-time' });

export const SCOPES = ['read', 'deploy', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const ScopeSchema = stringEnum(SCOPES, {
  description: '`read`: GET routes; `deploy`: also register, alias, delete, build, deploy; `admin`: also API keys and devices',
});

/** Who made a record: the API key's id and name (never the key). */
export const Actor = Type.Object({ keyId: Type.String(), keyName: Type.String() });
