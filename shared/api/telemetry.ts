/**
 * Telemetry queries: per-service figures merged from the devices' interval batches, a device's own
 * metrics, and capture export. The hub validates requests with these schemas and they produce the
 * OpenAPI document.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ContainerMetrics, DeviceMetrics, OutboxStatus } from '../protocol.js';
import { DURATION_PATTERN, parseDuration } from '../duration.js';
import { NAME_PATTERN, Timestamp } from './common.js';
import { DeviceId } from './devices.js';

/** `1h` (that long before now) or an ISO date-time; one pattern so a typo is refused with a 400. */
export const TIME_BOUND_PATTERN = `^(?:${DURATION_PATTERN.slice(1, -1)}|\\d{4}-\\d{2}-\\d{2}T\\S+)$`;
const TimeBound = (description: string) =>
  Type.String({ pattern: TIME_BOUND_PATTERN, examples: ['1h', '24h', '2024-05-01T00:00:00Z'], description });

export const DEFAULT_SINCE = '1h';

/**
 * A time bound as ms since the epoch: a duration counts back from `now`. Undefined for text that is
 * neither (the schema's pattern lets some impossible dates through, e.g. month 13).
 */
export function parseTimeBound(text: string, now: number): number | undefined {
  if (new RegExp(DURATION_PATTERN).test(text)) return now - parseDuration(text);
  if (!/^\d{4}-\d{2}-\d{2}T\S+$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}


export const TelemetryWindowQuery = Type.Object(
  {
    since: Type.String({ ...TimeBound('start of the window (inclusive): a duration back from now, or a date-time'), default: DEFAULT_SINCE }),
    until: Type.Optional(TimeBound('end of the window (exclusive); default now')),
  },
  { additionalProperties: false },
);

export const ServiceTelemetryQuery = Type.Composite([TelemetryWindowQuery, Type.Object({ device: Type.Optional(DeviceId) })], { additionalProperties: false });
export type ServiceTelemetryQuery = Static<typeof ServiceTelemetryQuery>;

export const PERCENTILES = ['p50', 'p95', 'p99'] as const;
export type PercentileName = (typeof PERCENTILES)[number];

const Percentile = (p: number) =>
  Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description: `${p}th percentile latency in ms, merged from the histograms (null: no request answered)` });

/** Figures of one service over a window, for one device or the fleet. */
export const ServiceFigures = Type.Object({
  requests: Type.Integer({ minimum: 0, description: 'requests that reached the gateway for this service' }),
  errors: Type.Integer({
    minimum: 0,
    description:
      'answers with a 5xx status: the scoring container’s own 5xx, 502 when it failed, and 503 when no slot freed up within the queue timeout (those are also in queueTimeouts). 4xx answers, 429 included, are not errors.',
  }),
  rejected: Type.Integer({ minimum: 0, description: '429 answers: the queue was full' }),
  queueTimeouts: Type.Integer({ minimum: 0, description: '503 answers: no slot within the queue timeout' }),
  requestsPerSecond: Type.Number({ minimum: 0, description: 'requests divided by the seconds in the window' }),
  errorRate: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], { description: 'errors / requests (null: no requests)' }),
  p50: Percentile(50),
  p95: Percentile(95),
  p99: Percentile(99),
  atLeast: Type.Array(Type.Unsafe<PercentileName>({ type: 'string', enum: [...PERCENTILES] }), {
    description: 'percentiles that fell in the open bucket above the last bound: their value is that bound, a lower bound on the truth (shown as "> N ms")',
  }),
  replicas: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
    description:
      'ready replicas at the end of the latest interval in the window (for the fleet: the sum over devices that sent it); null: no batch in the window carried the count (agents older than replicas)',
  }),
  scaling: Type.Object(
    {
      up: Type.Integer({ minimum: 0, description: 'replicas the autoscaler added' }),
      down: Type.Integer({ minimum: 0, description: 'replicas the autoscaler removed' }),
      held: Type.Integer({ minimum: 0, description: 'additions the load asked for and the resource guard refused (not enough free memory)' }),
    },
    { description: "the autoscaler's decisions in the window" },
  ),
});
export type ServiceFigures = Static<typeof ServiceFigures>;

/** Scoring code's own figures over a window, for the fleet (`metrics.count`, `metrics.observe` in score.js/score.py). */
export const ServiceCustomMetrics = Type.Object(
  {
    counters: Type.Record(Type.String(), Type.Number({ minimum: 0 }), { description: 'per name, what metrics.count added up to in the window over every device and replica' }),
    observations: Type.Record(
      Type.String(),
      Type.Object({
        count: Type.Integer({ minimum: 0 }),
        sum: Type.Number(),
        min: Type.Number({ description: 'the least value observed (each replica reports its least since it started, so this may predate the window)' }),
        max: Type.Number({ description: 'the greatest value observed (as min: possibly from before the window)' }),
        mean: Type.Number({ description: 'sum / count' }),
      }),
      { description: 'per name, the values metrics.observe was given in the window' },
    ),
  },
  { description: "the scoring code's own figures (empty when it counts nothing)" },
);
export type ServiceCustomMetrics = Static<typeof ServiceCustomMetrics>;

export const ServiceTelemetry = Type.Composite([
  Type.Object({
    service: Type.String(),
    since: Timestamp,
    until: Timestamp,
  }),
  ServiceFigures,
  Type.Object({
    /** Optional in the type only, for readers of older hubs: this hub always sends it. */
    custom: Type.Optional(ServiceCustomMetrics),
    devices: Type.Array(Type.Composite([Type.Object({ device: Type.String() }), ServiceFigures]), { description: 'devices that sent figures for the service in the window, by id' }),
  }),
]);
export type ServiceTelemetry = Static<typeof ServiceTelemetry>;

export const SERVICE_SERIES_POINTS = { min: 2, max: 240, default: 60 } as const;

export const ServiceSeriesQuery = Type.Composite(
  [
    ServiceTelemetryQuery,
    Type.Object({
      points: Type.Integer({
        minimum: SERVICE_SERIES_POINTS.min,
        maximum: SERVICE_SERIES_POINTS.max,
        default: SERVICE_SERIES_POINTS.default,
        description: 'how many buckets to split the window into (fewer when the window is shorter than that many seconds)',
      }),
    }),
  ],
  { additionalProperties: false },
);
export type ServiceSeriesQuery = Static<typeof ServiceSeriesQuery>;

export const ServiceSeriesPoint = Type.Composite(
  [
    Type.Object({ ts: Timestamp }),
    Type.Pick(ServiceFigures, ['requests', 'errors', 'rejected', 'queueTimeouts', 'requestsPerSecond', 'errorRate', 'p50', 'p95', 'p99', 'atLeast']),
  ],
  { description: '`ts` is the start of the bucket; figures of the batches whose interval ends in the bucket; requestsPerSecond over the bucket’s seconds (the last bucket ends at `until`)' },
);
export type ServiceSeriesPoint = Static<typeof ServiceSeriesPoint>;

export const ServiceSeries = Type.Object({
  service: Type.String(),
  since: Timestamp,
  until: Timestamp,
  stepSeconds: Type.Integer({ minimum: 1, description: 'length of a bucket: the window divided by `points`, rounded up to whole seconds' }),
  points: Type.Array(ServiceSeriesPoint, {
    maxItems: SERVICE_SERIES_POINTS.max,
    description: 'oldest first, one per bucket from `since`, empty buckets included (zeros, null percentiles); their counts add up to the report over the same window',
  }),
});
export type ServiceSeries = Static<typeof ServiceSeries>;

/** At most this many points in a device's series; a longer window keeps the last sample of each slot. */
export const MAX_SERIES_POINTS = 120;

export const DeviceSeriesPoint = Type.Object({
  ts: Timestamp,
  cpuPercent: Type.Union([Type.Number(), Type.Null()]),
  memoryUsedBytes: Type.Union([Type.Integer(), Type.Null()]),
  memoryTotalBytes: Type.Union([Type.Integer(), Type.Null()]),
  diskUsedBytes: Type.Union([Type.Integer(), Type.Null()]),
  diskTotalBytes: Type.Union([Type.Integer(), Type.Null()]),
  temperatureC: Type.Union([Type.Number(), Type.Null()]),
});
export type DeviceSeriesPoint = Static<typeof DeviceSeriesPoint>;

export const DeviceTelemetry = Type.Object({
  device: Type.String(),
  since: Timestamp,
  until: Timestamp,
  samples: Type.Integer({ minimum: 0, description: 'metrics batches stored for the device in the window' }),
  latest: Type.Union(
    [
      Type.Object({
        from: Timestamp,
        to: Timestamp,
        device: DeviceMetrics,
        containers: Type.Array(ContainerMetrics),
        outbox: OutboxStatus,
      }),
      Type.Null(),
    ],
    { description: 'the most recent metrics batch in the window (null: none)' },
  ),
  series: Type.Array(DeviceSeriesPoint, { maxItems: MAX_SERIES_POINTS, description: `oldest first; at most ${MAX_SERIES_POINTS} points spread over the window` }),
  invalidMessages: Type.Integer({ minimum: 0, description: 'messages from this device the hub dropped as invalid since it started' }),
});
export type DeviceTelemetry = Static<typeof DeviceTelemetry>;

/** `NAME` or `NAME:VERSION`. */
export const MODEL_FILTER_PATTERN = `^${NAME_PATTERN.slice(1, -1)}(?::[1-9][0-9]{0,8})?$`;

export const CaptureExportQuery = Type.Composite(
  [
    TelemetryWindowQuery,
    Type.Object({
      device: Type.Optional(DeviceId),
      model: Type.Optional(Type.String({ pattern: MODEL_FILTER_PATTERN, examples: ['iris', 'iris:3'], description: 'only samples scored by this model (first model of the service), or this version of it' })),
    }),
  ],
  { additionalProperties: false },
);
export type CaptureExportQuery = Static<typeof CaptureExportQuery>;

export const NDJSON = 'application/x-ndjson';
