/**
 * Scoring images built by the hub from a manifest: the build request, the image record (with live
 * progress while it builds) and the list. The CLI's `image build --json` prints an Image.
 */
import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../schema.js';
import { Actor, Digest, Name, Timestamp, Version } from './common.js';
import { RUNTIMES } from './manifests.js';

export const PLATFORMS = ['linux/amd64', 'linux/arm64'] as const;
export type Platform = (typeof PLATFORMS)[number];
export const DEFAULT_PLATFORMS: Platform[] = ['linux/amd64', 'linux/arm64'];

/**
 * `queued` → `building` (context, buildx, push) → `testing` (each platform scores the sample) →
 * `succeeded`, or `failed` / `cancelled` at any point.
 */
export const IMAGE_STATUSES = ['queued', 'building', 'testing', 'succeeded', 'failed', 'cancelled'] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];
export const FINISHED_STATUSES: readonly ImageStatus[] = ['succeeded', 'failed', 'cancelled'];

/** A Docker tag; `latest` is left to the user on purpose (it is not pinned by anything). */
export const IMAGE_TAG_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';

export const ImageId = Type.Integer({ minimum: 1, description: 'build number, 1, 2, …' });

export const ImageBuildRequest = Type.Object(
  {
    manifest: Name,
    version: Type.Optional(Version),
    platforms: Type.Optional(Type.Array(stringEnum(PLATFORMS), { minItems: 1, uniqueItems: true, description: 'default: linux/amd64 and linux/arm64' })),
    tags: Type.Optional(
      Type.Array(Type.String({ pattern: IMAGE_TAG_PATTERN, examples: ['stable', '2026-11-24'] }), {
        maxItems: 8,
        uniqueItems: true,
        description: 'extra tags besides `vN` (the manifest version)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ImageBuildRequest = Static<typeof ImageBuildRequest>;

export const SmokeCheck = Type.Object(
  {
    status: stringEnum(['passed', 'failed'] as const),
    /** One line: what happened (the HTTP status of the sample, or why the container did not get that far). */
    message: Type.String(),
    /** The end of the container's output and the answer to the sample. */
    output: Type.String(),
  },
  { description: "the builder ran this platform's image and scored the manifest's sample" },
);
export type SmokeCheck = Static<typeof SmokeCheck>;

export const BuildProgress = Type.Object(
  {
    /** Build steps finished, over all platforms, as buildx reports them. */
    stepsDone: Type.Integer({ minimum: 0 }),
    stepsTotal: Type.Integer({ minimum: 0 }),
    /** The last thing the builder reported. */
    current: Type.String(),
  },
  { description: 'live, while the image is building or testing; null otherwise' },
);
export type BuildProgress = Static<typeof BuildProgress>;

export const Image = Type.Object({
  id: ImageId,
  status: stringEnum(IMAGE_STATUSES),
  manifest: Type.Object({ name: Name, version: Version, digest: Type.String() }),
  runtime: stringEnum(RUNTIMES),
  models: Type.Array(Type.Object({ name: Name, version: Version, digest: Digest })),
  /** e.g. `127.0.0.1:5000/edgeml/iris-scorer`. */
  repository: Type.String(),
  tags: Type.Array(Type.String()),
  /** `repository@digest` once pushed: the reference deployments pin. */
  ref: Type.Union([Type.String(), Type.Null()]),
  /** The multi-arch index digest once pushed. */
  digest: Type.Union([Digest, Type.Null()]),
  /** Every requested platform → its image digest (null until pushed). */
  platforms: Type.Record(Type.String(), Type.Union([Digest, Type.Null()])),
  /** Compressed bytes per platform in the registry (config and layers). */
  sizes: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
  checks: Type.Record(Type.String(), SmokeCheck),
  baseImage: Type.String(),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
  progress: Type.Union([BuildProgress, Type.Null()]),
  createdAt: Timestamp,
  createdBy: Actor,
  startedAt: Type.Union([Timestamp, Type.Null()]),
  finishedAt: Type.Union([Timestamp, Type.Null()]),
  durationMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  /** How often the build started; more than 1 after a hub restart interrupted it. */
  attempts: Type.Integer({ minimum: 0 }),
});
export type Image = Static<typeof Image>;

export const ImageList = Type.Object({ images: Type.Array(Image) });
export type ImageList = Static<typeof ImageList>;

export const ImageListQuery = Type.Object(
  { manifest: Type.Optional(Name), status: Type.Optional(stringEnum(IMAGE_STATUSES)) },
  { additionalProperties: false },
);
export type ImageListQuery = Static<typeof ImageListQuery>;

export const ImageLogQuery = Type.Object(
  { follow: Type.Optional(Type.Boolean({ default: false, description: 'keep the answer open and stream new lines until the build finishes' })) },
  { additionalProperties: false },
);
export type ImageLogQuery = Static<typeof ImageLogQuery>;
