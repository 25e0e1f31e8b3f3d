/**
 * Receives what agents publish, validates each message against its channel's schema and hands the
 * typed message to a handler. Anything malformed is dropped and counted per device and channel,
 * as is a message its handler refuses with MESSAGE_INVALID (a telemetry batch that cannot be
 * stored). (A synchronous handler that throws is caught and logged by the broker's delivery wrapper.)
 *
 * Telemetry is handled in a publish gate, before the broker acknowledges it: the device deletes a
 * batch once acknowledged, so the hub must have stored it by then (broker.ts explains the PUBACK).
 * A refused batch is acknowledged anyway, since sending it again would not make it valid. A metrics
 * batch invalid only for its scoring-code figures is kept without them (custom-salvage.ts).
 */
import { ChannelPublisher, Channels, allDevices, parseDeviceTopic, type Channel } from '../../shared/topics.js';
import { decodeMessage, type MessageTypes, type TelemetryBatch } from '../../shared/protocol.js';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { withoutCustom } from '../telemetry/custom-salvage.js';
import type { Broker } from './broker.js';

export type AgentChannel = { [C in Channel]: (typeof ChannelPublisher)[C] extends 'agent' ? C : never }[Channel];
type DeliveredChannel = Exclude<AgentChannel, 'telemetry'>;
export type InboxHandlers = { [C in DeliveredChannel]?: (deviceId: string, message: MessageTypes[C]) => void } & {
  /** Awaited before the device's publish is acknowledged: a rejection makes the device send it again. */
  telemetry?: (deviceId: string, message: TelemetryBatch) => Promise<unknown>;
};

export interface InboxStats {
  received: number;
  invalid: number;
  invalidByDevice: Record<string, number>;
  invalidByChannel: Record<AgentChannel, number>;
}

export interface Inbox {
  stats(): InboxStats;
  /** Telemetry batches kept without their scoring-code figures (`custom`), which broke the protocol. */
  customDropped(): number;
}

/** Past this many distinct devices, further ones are counted together under `OTHER_DEVICES`. */
export const MAX_TRACKED_DEVICES = 10_000;
/** Not a valid device id, so it cannot collide with one. */
export const OTHER_DEVICES = '(other)';

const AGENT_CHANNELS = Channels.filter((c): c is AgentChannel => ChannelPublisher[c] === 'agent');

export interface InboxOptions {
  /**
   * Told of every message a device publishes on its own topics, valid or not, before it is
   * decoded: proof the device is there (its `lastSeen`). Must be cheap and must not throw.
   */
  seen?: (deviceId: string) => void;
}

export async function startInbox(broker: Broker, handlers: InboxHandlers, logger: Logger, options: InboxOptions = {}): Promise<Inbox> {
  let received = 0;
  let invalid = 0;
  let customDropped = 0;
  // A Map, not an object: device ids such as "constructor" are valid. Bounded, because anyone who
  // can publish can make up device ids.
  const invalidByDevice = new Map<string, number>();
  const invalidByChannel = Object.fromEntries(AGENT_CHANNELS.map((c) => [c, 0])) as Record<AgentChannel, number>;

  const drop = (deviceId: string, channel: AgentChannel, topic: string, reason: string): void => {
    invalid++;
    invalidByChannel[channel]++;
    const key = invalidByDevice.has(deviceId) || invalidByDevice.size < MAX_TRACKED_DEVICES ? deviceId : OTHER_DEVICES;
    const fromDevice = (invalidByDevice.get(key) ?? 0) + 1;
    invalidByDevice.set(key, fromDevice);
    logger.warn({ deviceId, topic, reason, invalidFromDevice: fromDevice }, 'dropped invalid mqtt message');
  };

  /** The sender and the valid message, or undefined for a message to ignore or drop. */
  const receive = <C extends AgentChannel>(channel: C, topic: string, payload: Buffer): { deviceId: string; message: MessageTypes[C] } | undefined => {
    const parsed = parseDeviceTopic(topic);
    if (!parsed || parsed.channel !== channel) return undefined;
    received++;
    options.seen?.(parsed.deviceId);
    const decoded = decodeMessage(channel, payload);
    if (decoded.ok) return { deviceId: parsed.deviceId, message: decoded.value };
    const salvaged = channel === 'telemetry' ? withoutCustom(payload) : undefined;
    const again = salvaged && decodeMessage(channel, salvaged);
    if (again?.ok) {
      customDropped++;
      logger.warn({ deviceId: parsed.deviceId, topic, reason: decoded.error, customDropped }, "a telemetry batch's custom metrics break the protocol: the batch is kept without them");
      return { deviceId: parsed.deviceId, message: again.value };
    }
    drop(parsed.deviceId, channel, topic, decoded.error);
    return undefined;
  };

  const deliver = <C extends DeliveredChannel>(channel: C) =>
    broker.subscribe(allDevices(channel), (topic, payload) => {
      const m = receive(channel, topic, payload);
      if (m) (handlers[channel] as ((deviceId: string, message: MessageTypes[C]) => void) | undefined)?.(m.deviceId, m.message);
    });

  for (const channel of AGENT_CHANNELS) if (channel !== 'telemetry') await deliver(channel);
  broker.gate(allDevices('telemetry'), async (topic, payload) => {
    const m = receive('telemetry', topic, payload);
    if (!m) return;
    // Acknowledged means stored: without a handler to store it, the device keeps the batch.
    if (!handlers.telemetry) throw new EdgemlError(ErrorCodes.INTERNAL, 'no telemetry handler: the batch is not acknowledged');
    try {
      await handlers.telemetry(m.deviceId, m.message);
    } catch (err) {
      if (!isEdgemlError(err, ErrorCodes.MESSAGE_INVALID)) throw err;
      drop(m.deviceId, 'telemetry', topic, err.message);
    }
  });
  return {
    stats: () => ({ received, invalid, invalidByDevice: Object.fromEntries(invalidByDevice), invalidByChannel: { ...invalidByChannel } }),
    customDropped: () => customDropped,
  };
}
