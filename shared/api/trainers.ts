/**
 * Trainers: versioned training recipes (a script, its dependencies, environment) that the hub builds
 * into an image for its own platform. Retraining jobs run that image once per run (the trainer
 * contract in images/README.md).
 */
import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../schema.js';
import { BuildProgress } from './images.js';
import { Actor, Digest, Name, Timestamp, Version } from './common.js';
import { ENV_NAME_PATTERN, RUNTIMES, StoredFile } from './manifests.js';
import { FILENAME_PATTERN } from './models.js';

const TextFile = Type.Object(
  {
    filename: Type.String({ pattern: FILENAME_PATTERN }),
    content: Type.String({ description: 'UTF-8 text of the file' }),
  },
  { additionalProperties: false },
);

export const TrainerCreate = Type.Object(
  {
    runtime: stringEnum(RUNTIMES),
    train: TextFile,
    deps: Type.Optional(TextFile),
    // One line per value: it becomes an ENV instruction in the trainer image's Dockerfile.
    env: Type.Optional(Type.Record(Type.String({ pattern: ENV_NAME_PATTERN }), Type.String({ maxLength: 4096, pattern: '^[^\\r\\n]*$' }), { additionalProperties: false, maxProperties: 256 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type TrainerCreate = Static<typeof TrainerCreate>;

/** `queued` → `building` (context, buildx, push) → `succeeded`, or `failed`. */
const TRAINER_IMAGE_STATUSES = ['queued', 'building', 'succeeded', 'failed'] as const;

export const TrainerImage = Type.Object({
  status: stringEnum(TRAINER_IMAGE_STATUSES),
  /** `REGISTRY/PREFIX/trainer-NAME@sha256:…` once pushed: what a training run starts. */
  ref: Type.Union([Type.String(), Type.Null()]),
  digest: Type.Union([Digest, Type.Null()]),
  /** The hub's platform, the only one a trainer image is built for. */
  platform: Type.String(),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
  /** How often the build started; more than 1 after a hub restart interrupted it. */
  attempts: Type.Integer({ minimum: 0 }),
  /** Live while the image builds; null otherwise (never stored). */
  progress: Type.Optional(Type.Union([BuildProgress, Type.Null()])),
  startedAt: Type.Union([Timestamp, Type.Null()]),
  finishedAt: Type.Union([Timestamp, Type.Null()]),
});
export type TrainerImage = Static<typeof TrainerImage>;

export const TrainerVersion = Type.Object({
  name: Name,
  version: Version,
  digest: Type.String({ description: 'sha256 of the recipe content (runtime, files, env)' }),
  runtime: stringEnum(RUNTIMES),
  train: StoredFile,
  deps: Type.Union([StoredFile, Type.Null()]),
  env: Type.Record(Type.String(), Type.String()),
  description: Type.String(),
  image: TrainerImage,
  createdAt: Timestamp,
  createdBy: Actor,
});
export type TrainerVersion = Static<typeof TrainerVersion>;

export const TrainerVersionList = Type.Object({ versions: Type.Array(TrainerVersion) });
export type TrainerVersionList = Static<typeof TrainerVersionList>;

export const TrainerListQuery = Type.Object({ name: Type.Optional(Name) }, { additionalProperties: false });

export const TrainerLogQuery = Type.Object(
  { follow: Type.Optional(Type.Boolean({ default: false, description: 'keep the answer open and stream new lines until the build finishes' })) },
  { additionalProperties: false },
);
