/**
 * Who may connect to the broker and what each connection may touch. A device connects as itself
 * (client id = username = device id, password = its token; or client id = the CN of a client
 * certificate from the hub's CA, verified at the handshake, and no password; the certificate must
 * be one the hub issued to that device for MQTT, by its serial, so neither a device's gateway
 * certificate nor anything else an operator's CA signed is an MQTT identity) and may publish only the channels
 * agents publish, and subscribe only to the channels the hub publishes, under its own
 * `edgeml/v1/dev/{id}/` prefix. Exact topics only: a wildcard could reach past the prefix.
 *
 * Every check after CONNECT asks again whether the device is still admitted: a revocation must
 * hold even for a connection the broker failed to drop (one still connecting when it happened).
 */
import { hashSecret } from '../../shared/secrets.js';
import { ChannelPublisher, parseDeviceTopic } from '../../shared/topics.js';

export interface BrokerIdentity {
  deviceId: string;
  /**
   * sha256 of the token the connection authenticated with (absent: a client certificate). Once a
   * rotation's grace ends, a connection made with the replaced token is no longer admitted, while
   * one made with the new token carries on.
   */
  tokenHash?: string;
}

/** A connection's client certificate, verified at the TLS handshake against the hub's CA and CRL. */
export interface PeerCertificate {
  /** Subject CN. */
  commonName: string;
  /** Hex, as node:tls prints it. */
  serial: string;
}

export interface BrokerAuth {
  /** Resolves the identity for a CONNECT, or null to refuse it (bad username or password, or certificate). */
  authenticate(clientId: string, username: string | undefined, password: Buffer | undefined, certificate?: PeerCertificate): Promise<BrokerIdentity | null>;
  /**
   * Whether a verified client certificate may go on to CONNECT: checked at the handshake, so a
   * certificate that is no MQTT identity is refused the way a revoked one is. Absent: every
   * verified certificate goes on to CONNECT, where `authenticate` decides.
   */
  certificateAdmitted?(certificate: PeerCertificate): boolean;
  /** Whether an identity authenticated earlier may still use the broker (false once revoked). */
  admitted(identity: BrokerIdentity): boolean;
  canPublish(identity: BrokerIdentity, topic: string): boolean;
  canSubscribe(identity: BrokerIdentity, topicFilter: string): boolean;
}

export interface DeviceCredentials {
  verifyToken(deviceId: string, token: string): boolean;
  /** Whether the token with this hash is still the device's (current, or replaced and within its grace). */
  tokenHashValid(deviceId: string, tokenHash: string): boolean;
  /** Enrolled and not revoked. */
  isActive(deviceId: string): boolean;
}

export interface ClientCertificateRecords {
  /** The device the hub issued a client certificate with this serial to, while it is unexpired. */
  clientDevice(serial: string): string | undefined;
}

const NO_CLIENT_CERTIFICATES: ClientCertificateRecords = { clientDevice: () => undefined };

export function deviceBrokerAuth(devices: DeviceCredentials, certificates: ClientCertificateRecords = NO_CLIENT_CERTIFICATES): BrokerAuth {
  const admitted = (identity: BrokerIdentity) =>
    devices.isActive(identity.deviceId) && (identity.tokenHash === undefined || devices.tokenHashValid(identity.deviceId, identity.tokenHash));
  const ownTopic = (identity: BrokerIdentity, topic: string, publisher: 'agent' | 'hub'): boolean => {
    const parsed = parseDeviceTopic(topic);
    return parsed !== null && parsed.deviceId === identity.deviceId && ChannelPublisher[parsed.channel] === publisher && admitted(identity);
  };
  const certificateAdmitted = (certificate: PeerCertificate): boolean => {
    const id = certificates.clientDevice(certificate.serial);
    return id !== undefined && id === certificate.commonName && devices.isActive(id);
  };
  return {
    certificateAdmitted,
    authenticate: async (clientId, username, password, certificate) => {
      // A connection is one device: a certificate for one id does not carry another id's session or token.
      if (certificate !== undefined) {
        const id = certificate.commonName;
        const sameDevice = clientId === id && (username === undefined || username === id);
        return sameDevice && certificateAdmitted(certificate) ? { deviceId: id } : null;
      }
      if (!username || !password) return null;
      // Checked even when the ids differ, so a refusal takes the same time whatever was wrong.
      const valid = devices.verifyToken(username, password.toString('utf8'));
      // The client id names the MQTT session: a device must not resume another device's.
      return valid && clientId === username ? { deviceId: username, tokenHash: hashSecret(password.toString('utf8')) } : null;
    },
    admitted,
    canPublish: (identity, topic) => ownTopic(identity, topic, 'agent'),
    canSubscribe: (identity, filter) => ownTopic(identity, filter, 'hub'),
  };
}
