/**
 * Devices at the hub: enrollment (an id, labels, and a token shown once), labels, revocation, and
 * what the hub knows of each device (status, facts, last seen).
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeviceFacts, OfflineReasons, ReportedService } from '../protocol.js';
import { stringEnum } from '../schema.js';
import { DEVICE_ID_PATTERN } from '../topics.js';
import { Actor, TAG_KEY_PATTERN, Timestamp } from './common.js';
import { PreviousValidUntil, Rotations } from './rotations.js';

export const DeviceId = Type.String({ pattern: DEVICE_ID_PATTERN, examples: ['gateway-01'], description: '1-64 letters, digits, `.`, `_`, `-`' });

/** Label values are matched by selectors (`site=lab`), so they stay simple words. */
export const LABEL_VALUE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';
/**
 * Labels describe a device for selectors (site, model, ring…); every desired-state computation
 * matches each of them, so a handful is normal and thousands are an attack on the hub.
 */
export const MAX_LABELS = 64;
// additionalProperties: a pattern-keyed record alone only checks the keys that match the pattern.
export const Labels = Type.Record(Type.String({ pattern: TAG_KEY_PATTERN }), Type.String({ pattern: LABEL_VALUE_PATTERN }), {
  additionalProperties: false,
  maxProperties: MAX_LABELS,
  description: `key=value labels that deployments select devices by: at most ${MAX_LABELS}, keys of 1–63 letters, digits, \`.\`, \`_\`, \`/\`, \`-\`, values of 1–63 letters, digits, \`.\`, \`_\`, \`-\``,
});
export type Labels = Static<typeof Labels>;

export const DeviceEnroll = Type.Object({ id: DeviceId, labels: Type.Optional(Labels) }, { additionalProperties: false });
export type DeviceEnroll = Static<typeof DeviceEnroll>;

export const DeviceLabelsUpdate = Type.Object(
  {
    set: Type.Optional(Labels),
    remove: Type.Optional(Type.Array(Type.String({ pattern: TAG_KEY_PATTERN }), { uniqueItems: true, maxItems: MAX_LABELS })),
  },
  { additionalProperties: false },
);
export type DeviceLabelsUpdate = Static<typeof DeviceLabelsUpdate>;

/**
 * `never-connected`: enrolled, not yet seen; `online` / `offline`: its last status; `revoked`: its
 * token no longer works.
 */
export const DEVICE_STATUSES = ['never-connected', 'online', 'offline', 'revoked'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export const Device = Type.Object({
  id: DeviceId,
  status: stringEnum(DEVICE_STATUSES),
  labels: Labels,
  /** Why it went offline: a clean `shutdown`, or `lost` (the broker sent its last will). */
  offlineReason: Type.Union([stringEnum(OfflineReasons), Type.Null()]),
  onlineSince: Type.Union([Timestamp, Type.Null()]),
  lastSeen: Type.Union([Timestamp, Type.Null()]),
  facts: Type.Union([DeviceFacts, Type.Null()]),
  /** Where clients score on this device (`POST GATEWAY/v1/services/NAME/score`), as it reported. */
  gateway: Type.Union([Type.String(), Type.Null()]),
  enrolledAt: Timestamp,
  enrolledBy: Actor,
  revokedAt: Type.Union([Timestamp, Type.Null()]),
  /** What the hub last asked of the device, and what the device last reported about it. */
  desiredGeneration: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  observedGeneration: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  phase: Type.Union([stringEnum(['idle', 'reconciling', 'converged', 'failed']), Type.Null()]),
  services: Type.Array(ReportedService, {
    description:
      'each service as the device last reported it, with `replicas: {desired, ready, capacity?}` (ready: in the gateway rotation; capacity: why the resource guard holds the count below what the load asks) and the autoscaler’s `lastScale`; agents older than replicas leave both out',
  }),
  rotations: Rotations,
});
export type Device = Static<typeof Device>;

export const DeviceEnrolled = Type.Composite([Device, Type.Object({ token: Type.String({ description: 'shown once; the hub keeps only its hash' }) })]);
export type DeviceEnrolled = Static<typeof DeviceEnrolled>;

/** The enroll answer: the device with its token, and where its agent connects. */
export const DeviceEnrollment = Type.Composite([
  DeviceEnrolled,
  Type.Object({ broker: Type.String({ examples: ['mqtts://hub.example:8883'], description: "the broker URL for the agent's --hub: the hub's --mqtt-advertise, else its MQTT listen address" }) }),
]);
export type DeviceEnrollment = Static<typeof DeviceEnrollment>;

export const DeviceTokenRotated = Type.Composite([DeviceEnrolled, Type.Object({ previousValidUntil: PreviousValidUntil })]);
export type DeviceTokenRotated = Static<typeof DeviceTokenRotated>;

export const DeviceList = Type.Object({ devices: Type.Array(Device) });
export type DeviceList = Static<typeof DeviceList>;

export const DeviceListQuery = Type.Object(
  {
    label: Type.Optional(Type.Array(Type.String({ pattern: '^[^=]+=[^=]*$', maxLength: 128 }), { maxItems: MAX_LABELS, description: 'KEY=VALUE, repeatable: all must match' })),
    status: Type.Optional(stringEnum(DEVICE_STATUSES)),
  },
  { additionalProperties: false },
);
export type DeviceListQuery = Static<typeof DeviceListQuery>;

/** `site=lab` style selectors: every pair must match. The hub targets with it; the CLI checks with it. */
export function matchesLabels(labels: Labels, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}
