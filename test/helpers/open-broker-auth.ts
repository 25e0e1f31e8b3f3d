import type { BrokerAuth } from '../../hub/broker/auth.js';

/** Accepts every client and topic: for tests of the broker's mechanics, not of its security. */
export const openBrokerAuth: BrokerAuth = {
  authenticate: async (clientId) => ({ deviceId: clientId }),
  admitted: () => true,
  canPublish: () => true,
  canSubscribe: () => true,
};
