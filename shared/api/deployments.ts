/**
 * Deployments: a service (stable name on the device), an image pinned by digest, a label selector,
 * limits and replicas (per replica: each replica is one container), data capture settings, and a
 * service API key made by the hub (shown once; devices get only its hash).
 */
import { Type, type Static } from '@sinclair/typebox';
import { CaptureSettings, DEFAULT_SCALE, SHIP_LOGS, IMAGE_REF_PATTERN, LIMIT_BOUNDS, MAX_CAPTURE_BODY_BYTES, SERVICE_NAME_PATTERN, ServiceLimits, type ServiceScale } from '../protocol.js';
import { stringEnum, type CheckResult } from '../schema.js';
import { DURATION_PATTERN, parseDuration } from '../duration.js';
import { formatBytes, parseSize, SIZE_EXAMPLES, SIZE_PATTERN } from '../size.js';
import { Actor, Digest, Timestamp } from './common.js';
import { Labels } from './devices.js';
import { ImageId } from './images.js';
import { PreviousValidUntil, Rotations } from './rotations.js';
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
  image: Type.Optional(Type.String({ pattern: IMAGE_REF_PATTERN, examples: ['127.0.0.1:5000/edgeml/iris-scorer@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae'], description: 'an image pinned by digest' })),
  build: Type.Optional(ImageId),
};

/** How the per-replica limits add up, in the words of the API, the CLI and the README. */
export const PER_REPLICA =
  'per replica: with 3 ready replicas, maxConcurrent 1 and maxQueue 10, a device holds 3 requests in flight and 30 waiting before it answers 429';

const Selector = Type.Unsafe<Static<typeof Labels>>({ ...Labels, minProperties: 1, description: 'label selector: every KEY=VALUE must match' });

const LimitFields = {
  maxConcurrent: Type.Optional(
    Type.Integer({
      ...LIMIT_BOUNDS.maxConcurrent,
      description: `requests in flight to one replica at once, ${LIMIT_BOUNDS.maxConcurrent.minimum}–${LIMIT_BOUNDS.maxConcurrent.maximum} (default ${DEFAULT_MAX_CONCURRENT}); ${PER_REPLICA}`,
    }),
  ),
  maxQueue: Type.Optional(
    Type.Integer({
      ...LIMIT_BOUNDS.maxQueue,
      description: `requests waiting for a slot, per ready replica, in the service's one queue, ${LIMIT_BOUNDS.maxQueue.minimum}–${LIMIT_BOUNDS.maxQueue.maximum}; beyond that 429 (default ${DEFAULT_MAX_QUEUE})`,
    }),
  ),
  memory: Type.Optional(
    Type.String({ pattern: SIZE_PATTERN, maxLength: 32, examples: SIZE_EXAMPLES, description: `memory limit of each replica's container, e.g. 256m: between ${formatBytes(MEMORY.minimum)} and ${formatBytes(MEMORY.maximum)}` }),
  ),
  cpus: Type.Optional(Type.Number({ ...LIMIT_BOUNDS.cpus, description: `CPU limit of each replica's container, e.g. 0.5: above 0, at most ${LIMIT_BOUNDS.cpus.maximum}` })),
};

const REPLICAS = LIMIT_BOUNDS.replicas;
const WINDOW = LIMIT_BOUNDS.scaleWindowMs;
const windowRange = `between ${formatWindow(WINDOW.minimum)} and ${formatWindow(WINDOW.maximum)}`;

const ScaleFields = {
  replicas: Type.Optional(Type.Integer({ ...REPLICAS, description: `a fixed number of replicas (containers) per device, ${REPLICAS.minimum}–${REPLICAS.maximum}: minReplicas = maxReplicas = this; not with minReplicas or maxReplicas` })),
  minReplicas: Type.Optional(Type.Integer({ ...REPLICAS, description: `the fewest replicas the autoscaler keeps per device (default ${DEFAULT_SCALE.minReplicas})` })),
  maxReplicas: Type.Optional(Type.Integer({ ...REPLICAS, description: `the most replicas the autoscaler starts per device, at most ${REPLICAS.maximum} (default ${DEFAULT_SCALE.maxReplicas}); more only as far as their memory limits fit in the device's available memory` })),
  targetUtilization: Type.Optional(
    Type.Number({ ...LIMIT_BOUNDS.targetUtilization, description: `the autoscaler adds a replica when requests in flight and queued per ready replica stay above this share of maxConcurrent, (0, 1] (default ${DEFAULT_SCALE.targetUtilization})` }),
  ),
  scaleUpWindow: Type.Optional(
    Type.String({ pattern: DURATION_PATTERN, examples: ['5s'], description: `how long the load must stay above the target before a replica is added, ${windowRange} (default ${formatWindow(DEFAULT_SCALE.scaleUpWindowMs)})` }),
  ),
  scaleDownWindow: Type.Optional(
    Type.String({ pattern: DURATION_PATTERN, examples: ['60s'], description: `how long the load must stay below the target before one replica is removed, ${windowRange} (default ${formatWindow(DEFAULT_SCALE.scaleDownWindowMs)})` }),
  ),
};
type ScaleFields = { [K in keyof typeof ScaleFields]?: Static<(typeof ScaleFields)[K]> };

/** A window as the API shows it: `5s`, `90s`, `1500ms` (parseDuration reads it back). */
export function formatWindow(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function windowMs(text: string, field: string): CheckResult<number> {
  const ms = parseDuration(text);
  return ms < WINDOW.minimum || ms > WINDOW.maximum ? { ok: false, error: `${field}: must be ${windowRange}, not ${text}` } : { ok: true, value: ms };
}

/**
 * The scale settings a request asks for, the fields it leaves out kept from `current` (DEFAULT_SCALE
 * for a new deployment). What JSON Schema cannot say is checked here, naming the field under `prefix`
 * (`body.`, or `--` for flags): replicas together with min/max, min above max, windows out of range.
 */
export function resolveScale(request: ScaleFields, current: ServiceScale, prefix = 'body.'): CheckResult<ServiceScale> {
  const name = (field: string) => (prefix === '--' ? `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}` : `${prefix}${field}`);
  if (request.replicas !== undefined && (request.minReplicas !== undefined || request.maxReplicas !== undefined)) {
    return { ok: false, error: `${name('replicas')}: give either ${name('replicas')} (a fixed count) or ${name('minReplicas')}/${name('maxReplicas')} (autoscaled), not both` };
  }
  const scale = { ...current };
  if (request.replicas !== undefined) scale.minReplicas = scale.maxReplicas = request.replicas;
  if (request.minReplicas !== undefined) scale.minReplicas = request.minReplicas;
  if (request.maxReplicas !== undefined) scale.maxReplicas = request.maxReplicas;
  if (scale.minReplicas > scale.maxReplicas) {
    const field = request.minReplicas !== undefined ? 'minReplicas' : 'maxReplicas';
    return { ok: false, error: `${name(field)}: minReplicas (${scale.minReplicas}) must not be above maxReplicas (${scale.maxReplicas})` };
  }
  if (request.targetUtilization !== undefined) scale.targetUtilization = request.targetUtilization;
  for (const [field, key] of [['scaleUpWindow', 'scaleUpWindowMs'], ['scaleDownWindow', 'scaleDownWindowMs']] as const) {
    const text = request[field];
    if (text === undefined) continue;
    const checked = windowMs(text, name(field));
    if (!checked.ok) return checked;
    scale[key] = checked.value;
  }
  return { ok: true, value: scale };
}

export const ScaleView = Type.Object(
  {
    minReplicas: Type.Integer(REPLICAS),
    maxReplicas: Type.Integer(REPLICAS),
    targetUtilization: Type.Number(LIMIT_BOUNDS.targetUtilization),
    scaleUpWindow: Type.String({ examples: ['5s'] }),
    scaleDownWindow: Type.String({ examples: ['60s'] }),
  },
  { description: 'replicas per device: fixed when minReplicas = maxReplicas, else autoscaled between them' },
);
export type ScaleView = Static<typeof ScaleView>;

export function scaleView(scale: ServiceScale): ScaleView {
  return {
    minReplicas: scale.minReplicas,
    maxReplicas: scale.maxReplicas,
    targetUtilization: scale.targetUtilization,
    scaleUpWindow: formatWindow(scale.scaleUpWindowMs),
    scaleDownWindow: formatWindow(scale.scaleDownWindowMs),
  };
}

/** Not part of a revision either: a change reaches the devices without a rollout or a new container. */
export const ShipLogsField = stringEnum(SHIP_LOGS, {
  description: '(default off) error: each device sends the error lines of the service\'s containers (stderr, or JSON lines with level error or above) with its telemetry, rate-limited; off: none',
});

export const DeploymentCreate = Type.Object(
  {
    service: ServiceName,
    ...ImageSource,
    target: Selector,
    ...LimitFields,
    ...ScaleFields,
    rollout: Type.Optional(RolloutRequest),
    capture: Type.Optional(Capture),
    shipLogs: Type.Optional(ShipLogsField),
  },
  { additionalProperties: false },
);
export type DeploymentCreate = Static<typeof DeploymentCreate>;

/**
 * Any of: a new image (a new revision, rolled out), limits and scale (applied in place on every
 * targeted device, no new revision), a new target (devices that newly match get the service and
 * those that no longer match lose it, through a rollout). A new target and a new image are two updates.
 */
export const ServiceUpdate = Type.Object(
  { ...ImageSource, ...LimitFields, ...ScaleFields, target: Type.Optional(Selector), rollout: Type.Optional(RolloutRequest), shipLogs: Type.Optional(ShipLogsField) },
  { additionalProperties: false },
);
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
  /** The limits when it was made; devices get the deployment's current limits, whatever their revision. */
  limits: ServiceLimits,
  createdAt: Timestamp,
});
export type Revision = Static<typeof Revision>;

export const Deployment = Type.Object({
  service: ServiceName,
  revision: Type.Integer({ minimum: 1, description: 'bumped on every change of image (limits, scale, capture and target are the deployment\'s and change no revision)' }),
  image: Type.String({ description: 'repository@digest' }),
  digest: Digest,
  /** The hub image build it came from, when it did. */
  build: Type.Union([ImageId, Type.Null()]),
  models: Type.Array(Type.Object({ name: Type.String(), version: Type.Integer(), digest: Type.String() })),
  target: Labels,
  limits: Type.Unsafe<Static<typeof ServiceLimits>>({ ...ServiceLimits, description: `not part of a revision: a change applies on every targeted device in place; ${PER_REPLICA}` }),
  scale: ScaleView,
  /** Not part of a revision: a change reaches the devices without a rollout or a new container. */
  capture: Capture,
  /** Always set by this hub; absent from older ones (off). */
  shipLogs: Type.Optional(ShipLogsField),
  /** Identifies the service key (its first characters after the prefix); the key is shown once. */
  keyId: Type.String(),
  /** The revision devices get when no rollout moves them (null until a first rollout succeeds). */
  stableRevision: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  revisions: Type.Array(Revision, { description: 'every revision, oldest first' }),
  rollout: RolloutSummary,
  createdAt: Timestamp,
  createdBy: Actor,
  updatedAt: Timestamp,
  /** Set once `service delete` took it off every device; its history stays on the hub. */
  deletedAt: Type.Union([Timestamp, Type.Null()]),
  deletedBy: Type.Union([Actor, Type.Null()]),
  /** Rotations of the service key (`rotate-key`). */
  rotations: Rotations,
});
export type Deployment = Static<typeof Deployment>;

export const DeploymentCreated = Type.Composite([Deployment, Type.Object({ key: Type.String({ description: 'the service API key, shown once' }) })]);
export type DeploymentCreated = Static<typeof DeploymentCreated>;

export const KeyRotated = Type.Composite([DeploymentCreated, Type.Object({ previousKeyValidUntil: PreviousValidUntil })]);
export type KeyRotated = Static<typeof KeyRotated>;

export const DeploymentList = Type.Object({ deployments: Type.Array(Deployment, { description: 'live deployments by service name; with include=deleted, then deleted ones, oldest deletion first' }) });
export const DeploymentListQuery = Type.Object(
  { include: Type.Optional(stringEnum(['deleted'] as const, { description: '`deleted`: deleted deployments too (their history; `deletedAt` set)' })) },
  { additionalProperties: false },
);
export type DeploymentList = Static<typeof DeploymentList>;
