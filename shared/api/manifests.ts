import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../schema.js';
import { Actor, Digest, Name, Timestamp, Version } from './common.js';
import { FILENAME_PATTERN } from './models.js';

export const RUNTIMES = ['node', 'python'] as const;
export type Runtime = (typeof RUNTIMES)[number];

/** `NAME:VERSION` or `NAME@ALIAS`: the version is resolved and pinned by digest at creation. */
export const MODEL_REF_PATTERN = '^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?(?::[1-9][0-9]{0,8}|@[a-z](?:[a-z0-9._-]{0,30}[a-z0-9])?)$';
export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';

const TextFile = Type.Object(
  {
    filename: Type.String({ pattern: FILENAME_PATTERN }),
    content: Type.String({ description: 'UTF-8 text of the file' }),
  },
  { additionalProperties: false },
);

export const ManifestCreate = Type.Object(
  {
    models: Type.Array(Type.String({ pattern: MODEL_REF_PATTERN, examples: ['resnet50:3', 'resnet50@production'] }), { minItems: 1, maxItems: 16 }),
    runtime: stringEnum(RUNTIMES),
    score: TextFile,
    schema: Type.Unknown({ description: 'the schema document: {"input": JSON Schema, "output": JSON Schema, "sample": input}' }),
    deps: Type.Optional(TextFile),
    // One line per value: it becomes an ENV instruction in the image's Dockerfile.
    env: Type.Optional(Type.Record(Type.String({ pattern: ENV_NAME_PATTERN }), Type.String({ maxLength: 4096, pattern: '^[^\\r\\n]*$' }), { additionalProperties: false, maxProperties: 256 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type ManifestCreate = Static<typeof ManifestCreate>;

export const StoredFile = Type.Object({ filename: Type.String(), digest: Digest, size: Type.Integer({ minimum: 0 }) });

export const ManifestVersion = Type.Object({
  name: Name,
  version: Version,
  digest: Type.String({ description: 'sha256 of the manifest content (models, runtime, files, schema, env)' }),
  runtime: stringEnum(RUNTIMES),
  models: Type.Array(Type.Object({ name: Name, version: Version, digest: Digest })),
  score: StoredFile,
  deps: Type.Union([StoredFile, Type.Null()]),
  schema: Type.Object({ input: Type.Unknown(), output: Type.Unknown(), sample: Type.Unknown() }),
  env: Type.Record(Type.String(), Type.String()),
  description: Type.String(),
  createdAt: Timestamp,
  createdBy: Actor,
});
export type ManifestVersion = Static<typeof ManifestVersion>;

export const ManifestVersionList = Type.Object({ versions: Type.Array(ManifestVersion) });
export type ManifestVersionList = Static<typeof ManifestVersionList>;

export const ManifestListQuery = Type.Object({ name: Type.Optional(Name) }, { additionalProperties: false });
