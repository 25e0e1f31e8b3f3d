/**
 * MQTT message schemas, protocol v1. Every payload is JSON with `v: 1`; a receiver validates it
 * with `decodeMessage` and drops (and counts) anything that does not match.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { NAME_PATTERN } from './api/common.js';
import { compileChecker, stringEnum, taggedUnion, type CheckResult } from './schema.js';
import type { Channel } from './topics.js';
import { EdgemlError, ErrorCodes } from './errors.js';

export const PROTOCOL_VERSION = 1;
/** Payloads above this are dropped before parsing, so a hostile publisher cannot make us parse megabytes. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

const V = Type.Literal(PROTOCOL_VERSION);
const Timestamp = Type.String({ format: 'date-time' });

export const DockerFacts = Type.Object(
  {
    version: Type.String(),
    apiVersion: Type.String(),
    os: Type.String(),
    arch: Type.String(),
  },
  { additionalProperties: false },
);

export const DeviceFacts = Type.Object(
  {
    hostname: Type.String(),
    /** OCI platform the agent pulls for, e.g. `linux/arm64`. */
    platform: Type.String(),
    arch: Type.String(),
    os: Type.Object(
      { distro: Type.String(), release: Type.String(), kernel: Type.String() },
      { additionalProperties: false },
    ),
    cpus: Type.Integer({ minimum: 0 }),
    memoryBytes: Type.Integer({ minimum: 0 }),
    docker: Type.Union([DockerFacts, Type.Null()]),
    agentVersion: Type.String(),
  },
  { additionalProperties: false },
);
export type DeviceFacts = Static<typeof DeviceFacts>;

export const OfflineReasons = ['shutdown', 'lost'] as const;

export const StatusMessage = taggedUnion('state', [
  Type.Object(
    {
      v: V,
      state: Type.Literal('online'),
      since: Timestamp,
      facts: DeviceFacts,
      /** The device's scoring gateway, e.g. `http://192.0.2.10:8090`. */
      gateway: Type.Optional(Type.String({ pattern: '^https?://[^\\s/]+$', maxLength: 256 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      v: V,
      state: Type.Literal('offline'),
      /** `shutdown` is a clean stop; `lost` is the last will, sent by the broker. */
      reason: stringEnum(OfflineReasons),
    },
    { additionalProperties: false },
  ),
]);
export type StatusMessage = Static<typeof StatusMessage>;

/** Service names become URL segments and container names. */
export const SERVICE_NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';

/** `repository@sha256:…`: devices pull images by digest, never by a tag that can move. */
export const IMAGE_REF_PATTERN = '^[^\\s@]+@sha256:[0-9a-f]{64}$';

/**
 * The bounds of every limit a device accepts. The REST API builds its request schemas from these,
 * so the hub refuses with 400 what a device would refuse, before anything is stored.
 */
export const LIMIT_BOUNDS = {
  maxConcurrent: { minimum: 1, maximum: 1024 },
  maxQueue: { minimum: 0, maximum: 100_000 },
  /** Above 1 TiB a limit is a typo (`1000t`), not a device. */
  memoryBytes: { minimum: 4 * 1024 * 1024, maximum: 1024 ** 4 },
  cpus: { exclusiveMinimum: 0, maximum: 1024 },
  /** Containers of one service on one device. */
  replicas: { minimum: 1, maximum: 64 },
  /** The share of a replica's `maxConcurrent` the autoscaler aims to keep busy. */
  targetUtilization: { exclusiveMinimum: 0, maximum: 1 },
  /** How long the load must ask for a change before the autoscaler makes it, in milliseconds. */
  scaleWindowMs: { minimum: 1000, maximum: 86_400_000 },
} as const;

export const ServiceLimits = Type.Object(
  {
    /** Requests in flight to one replica at once: a service with 3 ready replicas holds 3 × this. */
    maxConcurrent: Type.Integer(LIMIT_BOUNDS.maxConcurrent),
    /** Requests waiting per ready replica, in the service's one queue; beyond that the gateway answers 429. */
    maxQueue: Type.Integer(LIMIT_BOUNDS.maxQueue),
    /** Per replica (container). */
    memoryBytes: Type.Union([Type.Integer(LIMIT_BOUNDS.memoryBytes), Type.Null()]),
    /** Per replica (container). */
    cpus: Type.Union([Type.Number(LIMIT_BOUNDS.cpus), Type.Null()]),
  },
  { additionalProperties: false },
);
export type ServiceLimits = Static<typeof ServiceLimits>;

/**
 * How many replicas of a service a device runs. With min = max the count is fixed; otherwise the
 * agent's autoscaler moves it with the load: up when the average of requests in flight and queued
 * per ready replica stays above `targetUtilization` × `maxConcurrent` over `scaleUpWindowMs`, down one
 * replica at a time after `scaleDownWindowMs` without that need, never outside min..max, and up
 * only as far as the replicas' memory limits fit in the device's available memory.
 */
export const ServiceScale = Type.Object(
  {
    minReplicas: Type.Integer(LIMIT_BOUNDS.replicas),
    maxReplicas: Type.Integer(LIMIT_BOUNDS.replicas),
    targetUtilization: Type.Number(LIMIT_BOUNDS.targetUtilization),
    scaleUpWindowMs: Type.Integer(LIMIT_BOUNDS.scaleWindowMs),
    scaleDownWindowMs: Type.Integer(LIMIT_BOUNDS.scaleWindowMs),
  },
  { additionalProperties: false },
);
export type ServiceScale = Static<typeof ServiceScale>;

/** A service without `scale`: one replica (what every device ran before replicas existed). */
export const DEFAULT_SCALE: ServiceScale = { minReplicas: 1, maxReplicas: 1, targetUtilization: 0.7, scaleUpWindowMs: 5_000, scaleDownWindowMs: 60_000 };

/** The service's scale settings, defaults filled in. */
export function scaleOf(service: { scale?: ServiceScale }): ServiceScale {
  return service.scale ?? DEFAULT_SCALE;
}

export const MAX_CAPTURE_BODY_BYTES = 64 * 1024;

/** Which scoring requests the gateway samples, with their answers, into the telemetry stream. */
export const CaptureSettings = Type.Object(
  {
    /** The share of requests sampled, 0–1 (0: off). */
    rate: Type.Number({ minimum: 0, maximum: 1 }),
    /** Bodies above this are cut and marked `truncated`. */
    maxBodyBytes: Type.Integer({ minimum: 1, maximum: MAX_CAPTURE_BODY_BYTES }),
    /** JSON field names (in any letter case) replaced by "[redacted]" at any depth, in requests and responses, on the device. */
    redact: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 64 }),
  },
  { additionalProperties: false },
);
export type CaptureSettings = Static<typeof CaptureSettings>;

/** One service the device should run: a pinned image, its limits, and the hash of its API key. */
export const DesiredService = Type.Object(
  {
    name: Type.String({ pattern: SERVICE_NAME_PATTERN }),
    /** Bumped on every new image of the deployment: what a rollout moves devices to. Limits, scale and capture are the deployment's and change no revision. */
    revision: Type.Integer({ minimum: 1 }),
    /** `repository@sha256:…` (a multi-arch index or a single image). */
    image: Type.String({ minLength: 1, pattern: IMAGE_REF_PATTERN }),
    limits: ServiceLimits,
    /** sha256 (hex) of the service API key; the key itself never leaves the hub. */
    keyHash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    /** Keys replaced by a rotation: the gateway takes each until `until` (its own clock), then only `keyHash`. */
    previousKeys: Type.Optional(
      Type.Array(Type.Object({ keyHash: Type.String({ pattern: '^[0-9a-f]{64}$' }), until: Timestamp }, { additionalProperties: false }), { maxItems: 16 }),
    ),
    models: Type.Array(Type.Object({ name: Type.String(), version: Type.Integer({ minimum: 1 }), digest: Type.String() }, { additionalProperties: false })),
    /** Data capture; absent: off. Not part of the revision: changing it restarts nothing. */
    capture: Type.Optional(CaptureSettings),
    /**
     * Replicas and autoscaling; absent: one replica. Like the limits, not part of the revision:
     * a change is applied to the running containers (`docker update`, the gateway's limits) or by
     * adding and removing replicas, never by a new rollout.
     */
    scale: Type.Optional(ServiceScale),
    /** `error`: the agent ships the containers' error lines with the telemetry (kind `logs`); absent: off. Not part of the revision. */
    shipLogs: Type.Optional(stringEnum(['error'] as const)),
  },
  { additionalProperties: false },
);
export type DesiredService = Static<typeof DesiredService>;

/** A hub epoch: new at every hub start. */
export const HUB_EPOCH_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

export const DesiredState = Type.Object(
  {
    v: V,
    /**
     * The hub's epoch, new at every start, which `generation` counts in: a hub restored from a
     * backup, or started over with another store, counts lower, in another epoch. Optional: states
     * that agents cached before epochs existed carry none.
     */
    epoch: Type.Optional(Type.String({ pattern: HUB_EPOCH_PATTERN })),
    generation: Type.Integer({ minimum: 0 }),
    services: Type.Array(DesiredService),
  },
  { additionalProperties: false },
);
export type DesiredState = Static<typeof DesiredState>;

/**
 * Where one service stands on the device: `rejected` (pre-flight refused it: wrong platform, no
 * disk), `pulling`, `starting` (created, waiting for /health), `running` (the gateway routes to
 * it), `failed` (the previous container, if any, still serves; the agent retries with backoff).
 */
export const SERVICE_PHASES = ['pending', 'rejected', 'pulling', 'starting', 'running', 'failed'] as const;
export type ServicePhase = (typeof SERVICE_PHASES)[number];

/** How many replicas a service runs on the device. */
export const ReplicaCounts = Type.Object(
  {
    /** The count the agent works toward now: within min..max, what the load asks, as far as memory allows. */
    desired: Type.Integer({ minimum: 0 }),
    /** Replicas of the serving revision in the gateway's rotation. */
    ready: Type.Integer({ minimum: 0 }),
    /** While the resource guard holds the count below what the load asks: why (`capacity: …`). */
    capacity: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export type ReplicaCounts = Static<typeof ReplicaCounts>;

/** One decision of the autoscaler, with the numbers it was made on. */
export const ScaleDecision = Type.Object(
  {
    at: Type.String({ format: 'date-time' }),
    from: Type.Integer({ minimum: 0 }),
    to: Type.Integer({ minimum: 0 }),
    /** e.g. `load 11.2 per replica > 0.7 × maxConcurrent 1 over 5s` or `capacity: …`. */
    reason: Type.String({ maxLength: 500 }),
  },
  { additionalProperties: false },
);
export type ScaleDecision = Static<typeof ScaleDecision>;

const ErrorInfo = Type.Object({ code: Type.String(), message: Type.String({ maxLength: 4000 }) }, { additionalProperties: false });

export const ReportedService = Type.Object(
  {
    name: Type.String(),
    /** The revision this entry is about (the one being rolled out, or running). */
    revision: Type.Integer({ minimum: 1 }),
    image: Type.String(),
    phase: stringEnum(SERVICE_PHASES),
    /** The revision the gateway routes to now, if any (it keeps serving while a new one fails). */
    servingRevision: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    /** Pull progress in bytes, while pulling. */
    progress: Type.Union([Type.Object({ current: Type.Integer({ minimum: 0 }), total: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }), Type.Null()]),
    error: Type.Union([ErrorInfo, Type.Null()]),
    /** Absent from agents older than replicas. */
    replicas: Type.Optional(ReplicaCounts),
    /** The autoscaler's latest decision, if it made one. */
    lastScale: Type.Optional(ScaleDecision),
  },
  { additionalProperties: false },
);
export type ReportedService = Static<typeof ReportedService>;

export const ReportedState = Type.Object(
  {
    v: V,
    observedGeneration: Type.Integer({ minimum: 0 }),
    phase: stringEnum(['idle', 'reconciling', 'converged', 'failed']),
    services: Type.Array(ReportedService),
    error: Type.Optional(ErrorInfo),
  },
  { additionalProperties: false },
);
export type ReportedState = Static<typeof ReportedState>;

/** Bounded like the archive's batch ids: the hub stores a batch under `DEVICE/ID`. */
export const TELEMETRY_BATCH_ID_PATTERN = '^[A-Za-z0-9._:-]{1,64}$';
const Count = Type.Integer({ minimum: 0 });
const NullableNumber = Type.Union([Type.Number({ minimum: 0 }), Type.Null()]);
const UsedTotal = Type.Union([Type.Object({ usedBytes: Count, totalBytes: Count }, { additionalProperties: false }), Type.Null()]);

/** Fixed-bucket latency counts (shared/latency-histogram.ts): merged on the hub bucket by bucket. */
export const WireHistogram = Type.Object(
  {
    boundsMs: Type.Array(Type.Number({ minimum: 0 }), { minItems: 1, maxItems: 64 }),
    /** One count per bound, then the +Inf bucket. */
    counts: Type.Array(Count, { minItems: 2, maxItems: 65 }),
    sumMs: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);

/** Names scoring code gives its own figures (`metrics.count`/`metrics.observe` in images/runtime-*). */
export const CUSTOM_METRIC_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_.]{0,63}$';
/** Distinct custom names per service and interval, counters and observations together. */
export const MAX_CUSTOM_METRICS = 100;
const CustomName = Type.String({ pattern: CUSTOM_METRIC_NAME_PATTERN });
export const CustomObservation = Type.Object({ count: Count, sum: Type.Number(), min: Type.Number(), max: Type.Number() }, { additionalProperties: false });
export type CustomObservation = Static<typeof CustomObservation>;
/** Scoring code's own figures for one interval, summed over the service's replicas (agent/telemetry/custom-metrics.ts). */
export const CustomIntervalMetrics = Type.Object(
  {
    counters: Type.Optional(Type.Record(CustomName, Type.Number({ minimum: 0 }), { additionalProperties: false, maxProperties: MAX_CUSTOM_METRICS })),
    observations: Type.Optional(Type.Record(CustomName, CustomObservation, { additionalProperties: false, maxProperties: MAX_CUSTOM_METRICS })),
  },
  { additionalProperties: false },
);
export type CustomIntervalMetrics = Static<typeof CustomIntervalMetrics>;

/** A service's gateway counts for one interval (agent/gateway/metrics.ts). */
export const ServiceIntervalMetrics = Type.Object(
  {
    requests: Count,
    responses: Type.Object({ '2xx': Count, '3xx': Count, '4xx': Count, '5xx': Count }, { additionalProperties: false }),
    unauthenticated: Count,
    /** 429: the queue was full. */
    rejected: Count,
    /** 503: no slot within the queue timeout. */
    queueTimeouts: Count,
    upstreamErrors: Count,
    aborted: Count,
    /** Gauges at the end of the interval. */
    inFlight: Count,
    queued: Count,
    latencyMs: WireHistogram,
    /** Ready replicas at the end of the interval; absent from agents older than replicas. */
    replicas: Type.Optional(Count),
    /** The autoscaler's decisions in the interval: replicas added, removed, and additions the resource guard refused. */
    scaling: Type.Optional(Type.Object({ up: Count, down: Count, held: Count }, { additionalProperties: false })),
    /** Scoring code's own figures in the interval; absent when it counted nothing (and from older agents). */
    custom: Type.Optional(CustomIntervalMetrics),
  },
  { additionalProperties: false },
);
export type ServiceIntervalMetrics = Static<typeof ServiceIntervalMetrics>;

/** The device, from systeminformation; a probe that failed is null rather than a made-up 0. */
export const DeviceMetrics = Type.Object(
  {
    /** Load over all cores since the previous sample, percent (0–100). */
    cpuPercent: NullableNumber,
    memory: UsedTotal,
    /** The filesystem holding the agent's data directory. */
    disk: UsedTotal,
    temperatureC: Type.Union([Type.Number(), Type.Null()]),
    uptimeSeconds: NullableNumber,
    /** Bytes since boot over all interfaces but loopback (counters: the hub takes differences). */
    network: Type.Union([Type.Object({ rxBytes: Count, txBytes: Count }, { additionalProperties: false }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type DeviceMetrics = Static<typeof DeviceMetrics>;

export const ContainerMetrics = Type.Object(
  {
    service: Type.String({ pattern: SERVICE_NAME_PATTERN }),
    revision: Type.Integer({ minimum: 1 }),
    cpuPercent: NullableNumber,
    memoryBytes: Type.Union([Count, Type.Null()]),
    memoryLimitBytes: Type.Union([Count, Type.Null()]),
  },
  { additionalProperties: false },
);
export type ContainerMetrics = Static<typeof ContainerMetrics>;

/** The agent's telemetry queue, so the hub sees what a long cut-off cost. Cumulative since the queue was made. */
export const OutboxStatus = Type.Object(
  {
    /** `feedback` is absent from agents older than the feedback lane. */
    dropped: Type.Object({ metrics: Count, capture: Count, feedback: Type.Optional(Count), logs: Type.Optional(Count) }, { additionalProperties: false }),
    queued: Type.Object({ metrics: Count, capture: Count, feedback: Type.Optional(Count) }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type OutboxStatus = Static<typeof OutboxStatus>;

/** A captured request or response body, after redaction, within the deployment's cap. */
export const CapturedBody = Type.Object(
  {
    /** The body as JSON, when it was JSON and fits the cap. */
    json: Type.Optional(Type.Unknown()),
    /** Otherwise its first bytes as text (UTF-8; cut at the cap). */
    text: Type.Optional(Type.String()),
    /** The size of the whole body as it went over the wire. */
    bytes: Count,
    truncated: Type.Boolean(),
    /** The body was left out: it could not be parsed, so the named fields could not be redacted. */
    withheld: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type CapturedBody = Static<typeof CapturedBody>;

/** The gateway's id of one scoring request: the client's own `x-request-id` when it is this, else one the gateway made. */
export const REQUEST_ID_PATTERN = '^[\\x21-\\x7e]+$';
export const REQUEST_ID_MAX_LENGTH = 128;

/** The model versions a revision carries. */
const ModelRefs = Type.Array(Type.Object({ name: Type.String({ pattern: NAME_PATTERN }), version: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }), { maxItems: 64 });

export const CaptureSample = Type.Object(
  {
    ts: Timestamp,
    /** Optional: samples from agents older than request ids still validate. */
    requestId: Type.Optional(Type.String({ minLength: 1, maxLength: REQUEST_ID_MAX_LENGTH, pattern: REQUEST_ID_PATTERN })),
    service: Type.String({ pattern: SERVICE_NAME_PATTERN }),
    revision: Type.Integer({ minimum: 1 }),
    models: ModelRefs,
    status: Type.Integer({ minimum: 100, maximum: 599 }),
    latencyMs: Type.Number({ minimum: 0 }),
    request: CapturedBody,
    response: CapturedBody,
  },
  { additionalProperties: false },
);
export type CaptureSample = Static<typeof CaptureSample>;

/**
 * One label a client gave the gateway (`POST /v1/services/NAME/feedback`): for a captured request
 * (`requestId` of the request, `input` absent: the hub joins it to the captured sample), or an
 * example given directly (`input` present, `requestId` one the gateway made for it).
 */
export const FeedbackItem = Type.Object(
  {
    /** When the gateway accepted it (device clock). */
    ts: Timestamp,
    requestId: Type.String({ minLength: 1, maxLength: REQUEST_ID_MAX_LENGTH, pattern: REQUEST_ID_PATTERN }),
    service: Type.String({ pattern: SERVICE_NAME_PATTERN }),
    /** The revision and models that answered the request (by request id), or that served the service when an inline example came. */
    revision: Type.Integer({ minimum: 1 }),
    models: ModelRefs,
    /** Inline examples only: the input, valid against the service's input schema. */
    input: Type.Optional(Type.Unknown()),
    label: Type.Unknown(),
  },
  { additionalProperties: false },
);
export type FeedbackItem = Static<typeof FeedbackItem>;

/** A feedback item's encoded size is at most this (input and label included). */
export const MAX_FEEDBACK_ITEM_BYTES = MAX_CAPTURE_BODY_BYTES + 4 * 1024;

/** Deployment `shipLogs`: `error` ships the error lines of the service's containers with the telemetry. */
export const SHIP_LOGS = ['off', 'error'] as const;
export type ShipLogs = (typeof SHIP_LOGS)[number];
/** A shipped line is cut at this many characters (`…` appended), as in an on-demand session. */
export const MAX_SHIPPED_LINE_CHARS = 8 * 1024;

/** One error line of a service's container, shipped with the telemetry (`shipLogs: error`). */
export const ShippedLogLine = Type.Object(
  {
    ts: Timestamp,
    service: Type.String({ pattern: SERVICE_NAME_PATTERN }),
    replica: Type.Integer({ minimum: 1, maximum: 1024 }),
    stream: stringEnum(['stdout', 'stderr'] as const),
    line: Type.String({ maxLength: MAX_SHIPPED_LINE_CHARS + 1 }),
  },
  { additionalProperties: false },
);
export type ShippedLogLine = Static<typeof ShippedLogLine>;

/**
 * A telemetry batch: `metrics` once per interval, `captures` when enough samples gathered. The
 * agent keeps it on disk until the broker acknowledged it; the hub stores each id once per device.
 */
export const TelemetryBatch = taggedUnion('kind', [
  Type.Object(
    {
      v: V,
      kind: Type.Literal('metrics'),
      id: Type.String({ pattern: TELEMETRY_BATCH_ID_PATTERN }),
      /** The interval the counts cover (device clock). */
      from: Timestamp,
      to: Timestamp,
      device: DeviceMetrics,
      containers: Type.Array(ContainerMetrics, { maxItems: 256 }),
      services: Type.Record(Type.String({ pattern: SERVICE_NAME_PATTERN }), ServiceIntervalMetrics, { additionalProperties: false, maxProperties: 256 }),
      outbox: OutboxStatus,
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      v: V,
      kind: Type.Literal('captures'),
      id: Type.String({ pattern: TELEMETRY_BATCH_ID_PATTERN }),
      samples: Type.Array(CaptureSample, { minItems: 1, maxItems: 10_000 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      v: V,
      kind: Type.Literal('feedback'),
      id: Type.String({ pattern: TELEMETRY_BATCH_ID_PATTERN }),
      items: Type.Array(FeedbackItem, { minItems: 1, maxItems: 1000 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      v: V,
      kind: Type.Literal('logs'),
      id: Type.String({ pattern: TELEMETRY_BATCH_ID_PATTERN }),
      lines: Type.Array(ShippedLogLine, { maxItems: 10_000 }),
      /** Per service, error lines the rate limit left out since the previous batch. */
      dropped: Type.Record(Type.String({ pattern: SERVICE_NAME_PATTERN }), Count, { additionalProperties: false, maxProperties: 256 }),
    },
    { additionalProperties: false },
  ),
]);
export type TelemetryBatch = Static<typeof TelemetryBatch>;
export type MetricsBatch = Extract<TelemetryBatch, { kind: 'metrics' }>;
export type CapturesBatch = Extract<TelemetryBatch, { kind: 'captures' }>;
export type FeedbackBatch = Extract<TelemetryBatch, { kind: 'feedback' }>;
export type LogsBatch = Extract<TelemetryBatch, { kind: 'logs' }>;

export const CommandNames = ['ping', 'logs.start', 'logs.keepalive', 'logs.stop'] as const;

/** Bounds of one on-demand log session (agent/logs/), the same on both sides. */
export const LOG_SESSION_LIMITS = {
  maxBytes: 1024 * 1024,
  maxMs: 10 * 60 * 1000,
  /** Sessions of one device at once. */
  maxSessions: 4,
  /** The hub renews a session this often; the agent ends one not renewed for `leaseMs`. */
  keepaliveMs: 10_000,
  leaseMs: 30_000,
  /** A line longer than this is cut (`…` appended). */
  maxLineChars: 8 * 1024,
} as const;
export const LOG_SESSION_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
const LogSessionId = Type.String({ pattern: LOG_SESSION_ID_PATTERN });
export const LOG_END_REASONS = ['done', 'limit', 'timeout', 'device-offline', 'error', 'stopped'] as const;
export type LogEndReason = (typeof LOG_END_REASONS)[number];

/** `args` of `logs.start`: one service's containers (every replica) or the agent's own output. */
export const LogsStartArgs = Type.Object(
  {
    session: LogSessionId,
    source: Type.Union([Type.Object({ service: Type.String({ pattern: SERVICE_NAME_PATTERN }) }, { additionalProperties: false }), Type.Object({ agent: Type.Literal(true) }, { additionalProperties: false })]),
    /** Only lines from this time on (device clock). */
    since: Type.Optional(Timestamp),
    /** Only the last N lines before following (per replica). */
    tail: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    follow: Type.Boolean(),
    maxBytes: Type.Integer({ minimum: 1, maximum: LOG_SESSION_LIMITS.maxBytes }),
  },
  { additionalProperties: false },
);
export type LogsStartArgs = Static<typeof LogsStartArgs>;
/** `args` of `logs.keepalive` and `logs.stop`. */
export const LogsSessionArgs = Type.Object({ session: LogSessionId }, { additionalProperties: false });
export type LogsSessionArgs = Static<typeof LogsSessionArgs>;

export const LogLine = Type.Object(
  {
    ts: Timestamp,
    /** `agent`, or the service's name. */
    source: Type.String({ minLength: 1, maxLength: 64 }),
    /** Which of the service's containers (1-based, in order of creation); absent for the agent. */
    replica: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    stream: stringEnum(['stdout', 'stderr'] as const),
    line: Type.String({ maxLength: LOG_SESSION_LIMITS.maxLineChars + 1 }),
  },
  { additionalProperties: false },
);
export type LogLine = Static<typeof LogLine>;

/** Agent → hub on `logs`: the lines of one session in order (`seq` from 0), the last one with `end`. */
export const LogsMessage = Type.Object(
  {
    v: V,
    session: LogSessionId,
    seq: Type.Integer({ minimum: 0 }),
    lines: Type.Array(LogLine, { maxItems: 10_000 }),
    end: Type.Optional(Type.Object({ reason: stringEnum(LOG_END_REASONS), message: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type LogsMessage = Static<typeof LogsMessage>;
export const Command = Type.Object(
  {
    v: V,
    id: Type.String({ minLength: 1, maxLength: 128 }),
    name: stringEnum(CommandNames),
    args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type Command = Static<typeof Command>;

export const CommandAck = Type.Object(
  {
    v: V,
    id: Type.String({ minLength: 1, maxLength: 128 }),
    ok: Type.Boolean(),
    result: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  { additionalProperties: false },
);
export type CommandAck = Static<typeof CommandAck>;

/** What a device asks a certificate for: its gateway's HTTPS, or its own MQTT identity (mTLS). */
export const CERTIFICATE_PURPOSES = ['gateway', 'client'] as const;
export type CertificatePurpose = (typeof CERTIFICATE_PURPOSES)[number];
/** A PEM block of a P-256 CSR or certificate is well under this. */
const MAX_PEM_CHARS = 16 * 1024;
const Pem = Type.String({ minLength: 1, maxLength: MAX_PEM_CHARS, pattern: '^-----BEGIN [A-Z ]+-----' });

/**
 * A device's certificate signing request (PKCS #10, PEM). The key pair is made on the device and
 * never leaves it. A `gateway` request names the DNS names and IP addresses the gateway serves
 * under (subjectAltName in the CSR); a `client` request's subject CN is the device id.
 */
export const CertificateRequest = Type.Object(
  {
    v: V,
    id: Type.String({ minLength: 1, maxLength: 128, description: 'chosen by the device; the answer carries it back' }),
    purpose: stringEnum(CERTIFICATE_PURPOSES),
    csr: Pem,
  },
  { additionalProperties: false },
);
export type CertificateRequest = Static<typeof CertificateRequest>;

/** The hub's answer to a CertificateRequest: the certificate and the CA that signed it, or why not. */
export const CertificateAnswer = Type.Object(
  {
    v: V,
    id: Type.String({ minLength: 1, maxLength: 128 }),
    purpose: stringEnum(CERTIFICATE_PURPOSES),
    certificate: Type.Optional(Pem),
    ca: Type.Optional(Pem),
    notAfter: Type.Optional(Type.String({ format: 'date-time' })),
    error: Type.Optional(Type.Object({ code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 1024 }) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type CertificateAnswer = Static<typeof CertificateAnswer>;

export interface MessageTypes {
  desired: DesiredState;
  reported: ReportedState;
  telemetry: TelemetryBatch;
  status: StatusMessage;
  cmd: Command;
  'cmd/ack': CommandAck;
  csr: CertificateRequest;
  cert: CertificateAnswer;
  logs: LogsMessage;
}

const schemas: Record<Channel, TSchema> = {
  desired: DesiredState,
  reported: ReportedState,
  telemetry: TelemetryBatch,
  status: StatusMessage,
  cmd: Command,
  'cmd/ack': CommandAck,
  csr: CertificateRequest,
  cert: CertificateAnswer,
  logs: LogsMessage,
};

type Checkers = { [C in Channel]: (value: unknown) => CheckResult<MessageTypes[C]> };
let compiled: Checkers | undefined;
// Compiled on first use, not at import: importing the protocol costs nothing.
function checkers(): Checkers {
  compiled ??= Object.fromEntries(Object.entries(schemas).map(([channel, schema]) => [channel, compileChecker(schema)])) as Checkers;
  return compiled;
}

/** Parses and validates a payload for a channel. Never throws. */
export function decodeMessage<C extends Channel>(channel: C, payload: Buffer | string): CheckResult<MessageTypes[C]> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > MAX_MESSAGE_BYTES) return { ok: false, error: `payload of ${size} bytes exceeds ${MAX_MESSAGE_BYTES}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  return checkers()[channel](parsed);
}

/**
 * Serializes a message after checking it against its schema: a sender finds out about a bad
 * message (say, odd values from a system probe) instead of the receiver silently dropping it.
 */
export function encodeMessage<C extends Channel>(channel: C, message: MessageTypes[C]): Buffer {
  const checked = checkers()[channel](JSON.parse(JSON.stringify(message)));
  if (!checked.ok) throw new EdgemlError(ErrorCodes.MESSAGE_INVALID, `refusing to send an invalid ${channel} message: ${checked.error}`);
  return Buffer.from(JSON.stringify(message));
}
