/**
 * The seam where device authentication and per-device topic ACLs plug into the broker.
 * The broker asks these three questions and nothing else.
 */
export interface BrokerIdentity {
  /** The device this connection speaks for, or null for a hub-internal/anonymous client. */
  deviceId: string | null;
}

export interface BrokerAuth {
  /** Resolves the identity for a CONNECT, or null to refuse it (bad username or password). */
  authenticate(clientId: string, username: string | undefined, password: Buffer | undefined): Promise<BrokerIdentity | null>;
  canPublish(identity: BrokerIdentity, topic: string): boolean;
  canSubscribe(identity: BrokerIdentity, topicFilter: string): boolean;
}

/**
 * Accepts every client and topic. Device identity and ACLs replace this with enrollment; until
 * then the broker must listen on loopback only, which is the default.
 */
export const openBrokerAuth: BrokerAuth = {
  authenticate: async (clientId) => ({ deviceId: clientId }),
  canPublish: () => true,
  canSubscribe: () => true,
};
