/**
 * MQTT topic layout, protocol v1 (a contract: see DESIGN.md). Every device-scoped topic lives under
 * `edgeml/v1/dev/{id}/`, which is what the broker's per-device ACL keys on.
 */
import { EdgemlError, ErrorCodes } from './errors.js';

export const TOPIC_ROOT = 'edgeml/v1/dev';

export const Channels = ['desired', 'reported', 'telemetry', 'status', 'cmd', 'cmd/ack', 'csr', 'cert', 'logs'] as const;
export type Channel = (typeof Channels)[number];

/** Direction of each channel: who may publish it. Used by ACLs and by the hub's inbox. */
export const ChannelPublisher = {
  desired: 'hub',
  reported: 'agent',
  telemetry: 'agent',
  status: 'agent',
  cmd: 'hub',
  'cmd/ack': 'agent',
  csr: 'agent',
  cert: 'hub',
  /** Lines of an on-demand log session (agent/logs/), asked for with the `logs.start` command. */
  logs: 'agent',
} as const satisfies Record<Channel, 'hub' | 'agent'>;

/**
 * Device ids appear in topics, container labels and file names, so they exclude MQTT wildcards,
 * separators and anything a shell or path would interpret.
 */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const deviceIdRe = new RegExp(DEVICE_ID_PATTERN);

export function isValidDeviceId(id: string): boolean {
  return deviceIdRe.test(id);
}

export function assertDeviceId(id: string): string {
  if (!isValidDeviceId(id)) {
    throw new EdgemlError(
      ErrorCodes.TOPIC_INVALID,
      `invalid device id ${JSON.stringify(id)}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return id;
}

export function deviceTopic(deviceId: string, channel: Channel): string {
  return `${TOPIC_ROOT}/${assertDeviceId(deviceId)}/${channel}`;
}

/** The prefix a device owns; its ACL allows exactly the topics below it. */
export function devicePrefix(deviceId: string): string {
  return `${TOPIC_ROOT}/${assertDeviceId(deviceId)}/`;
}

/** Wildcard subscription for one channel across all devices (hub side). */
export function allDevices(channel: Channel): string {
  return `${TOPIC_ROOT}/+/${channel}`;
}

export interface ParsedTopic {
  deviceId: string;
  channel: Channel;
}

/** Returns null for anything that is not exactly a v1 device topic. */
export function parseDeviceTopic(topic: string): ParsedTopic | null {
  if (!topic.startsWith(`${TOPIC_ROOT}/`)) return null;
  const rest = topic.slice(TOPIC_ROOT.length + 1);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const deviceId = rest.slice(0, slash);
  const channel = rest.slice(slash + 1);
  if (!isValidDeviceId(deviceId)) return null;
  if (!(Channels as readonly string[]).includes(channel)) return null;
  return { deviceId, channel: channel as Channel };
}
