/**
 * Who may connect to the broker and what each connection may touch. A device connects as itself
 * (client id = username = device id, password = its token) and may publish only the channels
 * agents publish, and subscribe only to the channels the hub publishes, under its own
 * `edgeml/v1/dev/{id}/` prefix. Exact topics only: a wildcard could reach past the prefix.
 */
import { ChannelPublisher, parseDeviceTopic } from '../../shared/topics.js';

export interface BrokerIdentity {
  deviceId: string;
}

export interface BrokerAuth {
  /** Resolves the identity for a CONNECT, or null to refuse it (bad username or password). */
  authenticate(clientId: string, username: string | undefined, password: Buffer | undefined): Promise<BrokerIdentity | null>;
  canPublish(identity: BrokerIdentity, topic: string): boolean;
  canSubscribe(identity: BrokerIdentity, topicFilter: string): boolean;
}

export interface TokenVerifier {
  verifyToken(deviceId: string, token: string): boolean;
}

export function deviceBrokerAuth(devices: TokenVerifier): BrokerAuth {
  const ownTopic = (identity: BrokerIdentity, topic: string, publisher: 'agent' | 'hub'): boolean => {
    const parsed = parseDeviceTopic(topic);
    return parsed !== null && parsed.deviceId === identity.deviceId && ChannelPublisher[parsed.channel] === publisher;
  };
  return {
    authenticate: async (clientId, username, password) => {
      if (!username || !password) return null;
      // Checked even when the ids differ, so a refusal takes the same time whatever was wrong.
      const valid = devices.verifyToken(username, password.toString('utf8'));
      // The client id names the MQTT session: a device must not resume another device's.
      return valid && clientId === username ? { deviceId: username } : null;
    },
    canPublish: (identity, topic) => ownTopic(identity, topic, 'agent'),
    canSubscribe: (identity, filter) => ownTopic(identity, filter, 'hub'),
  };
}
