/**
 * Device logs over REST: `GET /api/v1/devices/{id}/logs` streams a service's (every replica's) or
 * the agent's output from the device as NDJSON, one DeviceLogLine per line, ending with one
 * DeviceLogEnd.
 */
import { Type, type Static } from '@sinclair/typebox';
import { LOG_END_REASONS, SERVICE_NAME_PATTERN } from '../protocol.js';
import { stringEnum } from '../schema.js';
import { DeviceId } from './devices.js';
import { TelemetryWindowQuery, TIME_BOUND_PATTERN } from './telemetry.js';

export const DeviceLogsQuery = Type.Object(
  {
    service: Type.Optional(Type.String({ pattern: SERVICE_NAME_PATTERN, description: "the service's containers, every replica (or agent=true)" })),
    agent: Type.Optional(Type.Boolean({ description: "the agent's own output (or service)" })),
    since: Type.Optional(Type.String({ pattern: TIME_BOUND_PATTERN, examples: ['10m', '2024-05-01T00:00:00Z'], description: 'only lines from then on: a duration back from now, or a date-time' })),
    tail: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000, description: 'only the last N lines (per replica) before following; 1000 when not given' })),
    follow: Type.Optional(Type.Boolean({ default: false, description: 'keep streaming new lines (at most 10 minutes and 1 MiB)' })),
  },
  { additionalProperties: false },
);
export type DeviceLogsQuery = Static<typeof DeviceLogsQuery>;

export const DeviceLogLine = Type.Object(
  {
    ts: Type.String({ format: 'date-time', description: "when the line was written (device clock)" }),
    source: Type.String({ description: '`agent`, or the service' }),
    replica: Type.Optional(Type.Integer({ minimum: 1, description: "which of the service's containers, 1-based in order of creation" })),
    stream: stringEnum(['stdout', 'stderr'] as const),
    line: Type.String(),
  },
  { additionalProperties: false },
);
export type DeviceLogLine = Static<typeof DeviceLogLine>;

export const DEVICE_LOG_END_REASONS = LOG_END_REASONS.filter((r) => r !== 'stopped');
export const DeviceLogEnd = Type.Object(
  {
    end: Type.Object(
      {
        reason: stringEnum(DEVICE_LOG_END_REASONS, { description: 'done: no more lines; limit: 1 MiB sent; timeout: 10 minutes, or the device stopped answering; device-offline; error' }),
        message: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type DeviceLogEnd = Static<typeof DeviceLogEnd>;

/** Lines a query of shipped logs answers at most, and by default. */
export const SHIPPED_LOGS_LIMIT = { default: 500, maximum: 5000 } as const;

/** `GET /api/v1/telemetry/services/{service}/logs`: error lines devices shipped (`shipLogs: error`). */
export const ShippedLogsQuery = Type.Composite(
  [
    TelemetryWindowQuery,
    Type.Object({
      device: Type.Optional(DeviceId),
      limit: Type.Integer({ minimum: 1, maximum: SHIPPED_LOGS_LIMIT.maximum, default: SHIPPED_LOGS_LIMIT.default, description: 'at most this many lines, the newest' }),
    }),
  ],
  { additionalProperties: false },
);
export type ShippedLogsQuery = Static<typeof ShippedLogsQuery>;

export const ShippedLogLineView = Type.Object(
  {
    ts: Type.String({ format: 'date-time', description: 'when the line was written (device clock)' }),
    device: DeviceId,
    replica: Type.Integer({ minimum: 1, description: "which of the service's containers on that device, 1-based in order of creation" }),
    stream: stringEnum(['stdout', 'stderr'] as const),
    line: Type.String({ description: 'cut at 8 KiB (… appended)' }),
  },
  { additionalProperties: false },
);
export type ShippedLogLineView = Static<typeof ShippedLogLineView>;

export const ShippedLogs = Type.Object(
  {
    service: Type.String({ pattern: SERVICE_NAME_PATTERN }),
    lines: Type.Array(ShippedLogLineView, { description: 'the newest lines of the window (at most limit), oldest first' }),
    dropped: Type.Integer({ minimum: 0, description: "error lines the devices' rate limit left out in the window" }),
  },
  { additionalProperties: false },
);
export type ShippedLogs = Static<typeof ShippedLogs>;
