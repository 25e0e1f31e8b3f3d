/**
 * Who may connect to the broker and what each connection may touch. A device connects as itself
 * (client id = username = device id, password = its token; or client id = the CN of a client
 * certificate from the hub's CA, verified at the handshake, and no password) and may publish only the channels
 * agents publish, and subscribe only to the channels the hub publishes, under its own
 * `edgeml/v1/dev/{id}/` prefix. Exact topics only: a wildcard could reach past the prefix.
 *
 * Every check after CONNECT asks again whether the device is still admitted: a revocation must
 * hold even for a connection the broker failed to drop (one still connecting when it happened).
 */
import { ChannelPublisher, parseDeviceTopic } from '../../shared/topics.js';

export interface BrokerIdentity {
  deviceId: string;
}

export interface BrokerAuth {
  /**
   * Resolves the identity for a CONNECT, or null to refuse it (bad username or password).
   * `certificateId`: the subject CN of the connection's client certificate, verified at the TLS
   * handshake against the hub's CA and CRL.
   */
  authenticate(clientId: string, username: string | undefined, password: Buffer | undefined, certificateId?: string): Promise<BrokerIdentity | null>;
  /** Whether an identity authenticated earlier may still use the broker (false once revoked). */
  admitted(identity: BrokerIdentity): boolean;
  canPublish(identity: BrokerIdentity, topic: string): boolean;
  canSubscribe(identity: BrokerIdentity, topicFilter: string): boolean;
}

export interface DeviceCredentials {
  verifyToken(deviceId: string, token: string): boolean;
  /** Enrolled and not revoked. */
  isActive(deviceId: string): boolean;
}

export function deviceBrokerAuth(devices: DeviceCredentials): BrokerAuth {
  const admitted = (identity: BrokerIdentity) => devices.isActive(identity.deviceId);
  const ownTopic = (identity: BrokerIdentity, topic: string, publisher: 'agent' | 'hub'): boolean => {
    const parsed = parseDeviceTopic(topic);
    return parsed !== null && parsed.deviceId === identity.deviceId && ChannelPublisher[parsed.channel] === publisher && admitted(identity);
  };
  return {
    authenticate: async (clientId, username, password, certificateId) => {
      // A connection is one device: a certificate for one id does not carry another id's session or token.
      if (certificateId !== undefined) {
        const sameDevice = clientId === certificateId && (username === undefined || username === certificateId);
        return sameDevice && devices.isActive(certificateId) ? { deviceId: certificateId } : null;
      }
      if (!username || !password) return null;
      // Checked even when the ids differ, so a refusal takes the same time whatever was wrong.
      const valid = devices.verifyToken(username, password.toString('utf8'));
      // The client id names the MQTT session: a device must not resume another device's.
      return valid && clientId === username ? { deviceId: username } : null;
    },
    admitted,
    canPublish: (identity, topic) => ownTopic(identity, topic, 'agent'),
    canSubscribe: (identity, filter) => ownTopic(identity, filter, 'hub'),
  };
}
