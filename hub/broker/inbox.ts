/**
 * Receives what agents publish, validates each message against its channel's schema and hands the
 * typed message to a handler. Anything malformed is dropped and counted per device. (A handler that
 * throws is caught and logged by the broker's delivery wrapper.)
 */
import { ChannelPublisher, Channels, allDevices, parseDeviceTopic, type Channel } from '../../shared/topics.js';
import { decodeMessage, type MessageTypes } from '../../shared/protocol.js';
import type { Logger } from '../../shared/logger.js';
import type { Broker } from './broker.js';

export type AgentChannel = { [C in Channel]: (typeof ChannelPublisher)[C] extends 'agent' ? C : never }[Channel];
export type InboxHandlers = { [C in AgentChannel]?: (deviceId: string, message: MessageTypes[C]) => void };

export interface InboxStats {
  received: number;
  invalid: number;
  invalidByDevice: Record<string, number>;
}

export interface Inbox {
  stats(): InboxStats;
}

/** Past this many distinct devices, further ones are counted together under `OTHER_DEVICES`. */
export const MAX_TRACKED_DEVICES = 10_000;
/** Not a valid device id, so it cannot collide with one. */
export const OTHER_DEVICES = '(other)';

const AGENT_CHANNELS = Channels.filter((c): c is AgentChannel => ChannelPublisher[c] === 'agent');

export async function startInbox(broker: Broker, handlers: InboxHandlers, logger: Logger): Promise<Inbox> {
  let received = 0;
  let invalid = 0;
  // A Map, not an object: device ids such as "constructor" are valid. Bounded, because anyone who
  // can publish can make up device ids.
  const invalidByDevice = new Map<string, number>();

  const drop = (deviceId: string, topic: string, reason: string): void => {
    invalid++;
    const key = invalidByDevice.has(deviceId) || invalidByDevice.size < MAX_TRACKED_DEVICES ? deviceId : OTHER_DEVICES;
    const fromDevice = (invalidByDevice.get(key) ?? 0) + 1;
    invalidByDevice.set(key, fromDevice);
    logger.warn({ deviceId, topic, reason, invalidFromDevice: fromDevice }, 'dropped invalid mqtt message');
  };

  const receive = <C extends AgentChannel>(channel: C, topic: string, payload: Buffer): void => {
    const parsed = parseDeviceTopic(topic);
    if (!parsed || parsed.channel !== channel) return;
    received++;
    const decoded = decodeMessage(channel, payload);
    if (!decoded.ok) {
      drop(parsed.deviceId, topic, decoded.error);
      return;
    }
    handlers[channel]?.(parsed.deviceId, decoded.value);
  };

  for (const channel of AGENT_CHANNELS) {
    await broker.subscribe(allDevices(channel), (topic, payload) => receive(channel, topic, payload));
  }
  return { stats: () => ({ received, invalid, invalidByDevice: Object.fromEntries(invalidByDevice) }) };
}
