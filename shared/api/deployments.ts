/**
 * Deployments: a service (stable name on the device), an image pinned by digest, a label selector,
 * limits, data capture settings, and a service API key made by the hub (shown once; devices get
 * only its hash).
 */
import { Type, type Static } from '@sinclair/typebox';
import { CaptureSettings, IMAGE_REF_PATTERN, LIMIT_BOUNDS, MAX_CAPTURE_BODY_BYTES, SERVICE_NAME_PATTERN, ServiceLimits } from '../protocol.js';
import { stringEnum, type CheckResult } from '../schema.js';
import { DURATION_PATTERN } from '../duration.js';
import { formatBytes, parseSize, SIZE_EXAMPLES, SIZE_PATTERN } from '../size.js';
import { Actor, Digest, Timestamp } from './common.js';
import { Labels } from './devices.js';
import { ImageId } from './images.js';
import { ROLLOUT_KINDS, ROLLOUT_PHASES, ROLLOUT_STRATEGIES, RolloutRequest } from './rollouts.js';

export const DEFAULT_MAX_CONCURRENT = 1;
export const DEFAULT_MAX_QUEUE = 10;

export const DEFAULT_CAPTURE_MAX_BODY_BYTES = 16 * 1024;

/** A deployment's capture settings until someone sets them: off. */
export const captureOff = (): CaptureSettings => ({ rate: 0, maxBodyBytes: DEFAULT_CAPTURE_MAX_BODY_BYTES, redact: [] });

/** The device's own schema, documented for the REST API. */
export const Capture = Type.Unsafe<CaptureSettings>({
  ...CaptureSettings,
  description: `data capture: the share of scoring requests (0–1; 0 is off) each device samples with their answers into telemetry, bodies cut at maxBodyBytes (at most ${MAX_CAPTURE_BODY_BYTES}), and JSON fields replaced by "[redacted]" on the device`,
  examples: [{ rate: 0.1, maxBodyBytes: DEFAULT_CAPTURE_MAX_BODY_BYTES, redact: ['password', 'ssn'] }],
});

export const ServiceName = Type.String({ pattern: SERVICE_NAME_PATTERN, examples: ['iris'], description: 'lowercase letters, digits and `-`; 1–63 characters' });

export { IMAGE_REF_PATTERN };

const MEMORY = LIMIT_BOUNDS.memoryBytes;

/**
 * A memory limit given as a size (`256m`), in bytes, within what devices accept. JSON Schema sees
 * only the text, so the parsed value is checked here, against the protocol's own bounds.
 */
export function memoryLimit(text: string, field: string): CheckResult<number> {
  const range = `between ${formatBytes(MEMORY.minimum)} and ${formatBytes(MEMORY.maximum)}`;
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch {
    return { ok: false, error: `${field}: must be a size like ${SIZE_EXAMPLES.join(', ')}, ${range}` };
  }
  if (bytes < MEMORY.minimum || bytes > MEMORY.maximum) return { ok: false, error: `${field}: must be ${range}, not ${text}` };
  return { ok: true, value: bytes };
}

const ImageSource = {
  image: Type.Optional(Type.String({ pattern: IMAGE_REF_PATTERN, examples: ['127.0.0.1:5000/edgeml/iris-scorer@sha256:…'], description: 'an image pinned by digest' })),
  build: Type.Optional(ImageId),
};

export const DeploymentCreate = Type.Object(
  {
    service: ServiceName,
    ...ImageSource,
    target: Type.Unsafe<Static<typeof Labels>>({ ...Labels, minProperties: 1, description: 'label selector: every KEY=VALUE must match' }),
    maxConcurrent: Type.Optional(
      Type.Integer({ ...LIMIT_BOUNDS.maxConcurrent, description: `requests in flight to the container at once, per device, ${LIMIT_BOUNDS.maxConcurrent.minimum}–${LIMIT_BOUNDS.maxConcurrent.maximum} (default ${DEFAULT_MAX_CONCURRENT})` }),
    ),
    maxQueue: Type.Optional(
      Type.Integer({ ...LIMIT_BOUNDS.maxQueue, description: `requests waiting for a slot, per device, ${LIMIT_BOUNDS.maxQueue.minimum}–${LIMIT_BOUNDS.maxQueue.maximum}; beyond that 429 (default ${DEFAULT_MAX_QUEUE})` }),
    ),
    memory: Type.Optional(
      Type.String({ pattern: SIZE_PATTERN, maxLength: 32, examples: SIZE_EXAMPLES, description: `container memory limit, e.g. 256m: between ${formatBytes(MEMORY.minimum)} and ${formatBytes(MEMORY.maximum)}` }),
    ),
    cpus: Type.Optional(Type.Number({ ...LIMIT_BOUNDS.cpus, description: `container CPU limit, e.g. 0.5: above 0, at most ${LIMIT_BOUNDS.cpus.maximum}` })),
    rollout: Type.Optional(RolloutRequest),
    capture: Type.Optional(Capture),
  },
  { additionalProperties: false },
);
export type DeploymentCreate = Static<typeof DeploymentCreate>;

export const ServiceUpdate = Type.Object({ ...ImageSource, rollout: Type.Optional(RolloutRequest) }, { additionalProperties: false });
export type ServiceUpdate = Static<typeof ServiceUpdate>;

/** The summary of a deployment's latest rollout (`edgeml rollout status ID` has the rest). */
export const RolloutSummary = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  kind: stringEnum(ROLLOUT_KINDS),
  /** The revision it moves devices to (null: the service goes away, a rolled-back create). */
  revision: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  strategy: stringEnum(ROLLOUT_STRATEGIES),
  phase: stringEnum(ROLLOUT_PHASES),
  /** Devices the selector matched when it started. */
  devices: Type.Array(Type.String()),
});
export type RolloutSummary = Static<typeof RolloutSummary>;

/** One revision of a deployment: what devices run when they are on it. */
export const Revision = Type.Object({
  revision: Type.Integer({ minimum: 1 }),
  image: Type.String({ description: 'repository@digest' }),
  digest: Digest,
  build: Type.Union([ImageId, Type.Null()]),
  models: Type.Array(Type.Object({ name: Type.String(), version: Type.Integer(), digest: Type.String() })),
  limits: ServiceLimits,
  createdAt: Timestamp,
});
export type Revision = Static<typeof Revision>;

export const Deployment = Type.Object({
  service: ServiceName,
  revision: Type.Integer({ minimum: 1, description: 'bumped on every change of image or limits' }),
  image: Type.String({ description: 'repository@digest' }),
  digest: Digest,
  /** The hub image build it came from, when it did. */
  build: Type.Union([ImageId, Type.Null()]),
  models: Type.Array(Type.Object({ name: Type.String(), version: Type.Integer(), digest: Type.String() })),
  target: Labels,
  limits: ServiceLimits,
  /** Not part of a revision: a change reaches the devices without a rollout or a new container. */
  capture: Capture,
  /** Identifies the service key (its first characters after the prefix); the key is shown once. */
  keyId: Type.String(),
  /** The revision devices get when no rollout moves them (null until a first rollout succeeds). */
  stableRevision: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  revisions: Type.Array(Revision, { description: 'every revision, oldest first' }),
  rollout: RolloutSummary,
  createdAt: Timestamp,
  createdBy: Actor,
  updatedAt: Timestamp,
});
export type Deployment = Static<typeof Deployment>;

export const DeploymentCreated = Type.Composite([Deployment, Type.Object({ key: Type.String({ description: 'the service API key, shown once' }) })]);
export type DeploymentCreated = Static<typeof DeploymentCreated>;

export const MAX_KEY_GRACE = '7d';
export const KeyRotate = Type.Object(
  {
    grace: Type.Optional(
      Type.String({ pattern: DURATION_PATTERN, default: '10m', examples: ['10m', '1h'], description: `how long the old key stays valid beside the new one (0s: not at all); at most ${MAX_KEY_GRACE}` }),
    ),
  },
  { additionalProperties: false },
);
export type KeyRotate = Static<typeof KeyRotate>;

export const KeyRotated = Type.Composite([
  DeploymentCreated,
  Type.Object({ previousKeyValidUntil: Type.Union([Timestamp, Type.Null()], { description: 'until when the replaced key still works; null: no grace' }) }),
]);
export type KeyRotated = Static<typeof KeyRotated>;

export const DeploymentList = Type.Object({ deployments: Type.Array(Deployment) });
export type DeploymentList = Static<typeof DeploymentList>;
