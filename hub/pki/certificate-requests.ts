/**
 * The hub's side of the `csr` channel: signs a device's request and publishes the answer on its
 * `cert` topic (QoS 1, not retained: an agent that missed it asks again with a new id).
 *
 * Bounded: a device has one request in flight at a time, and the hub at most MAX_IN_FLIGHT; what
 * comes on top is ignored (the agent asks again), so a flood costs a decode, not a signature and a
 * store write each.
 */
import { EdgemlError, ErrorCodes, isEdgemlError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { encodeMessage, type CertificateAnswer, type CertificateRequest } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import type { Broker } from '../broker/broker.js';
import type { HubCa } from './ca.js';
import type { CertificateIssuer } from './issuer.js';

const MAX_IN_FLIGHT = 64;
/** CertificateAnswer's error message bound (protocol.ts). */
const MAX_ANSWER_MESSAGE = 1024;

export interface CertificateRequestDeps {
  issuer: Pick<CertificateIssuer, 'issue'>;
  broker: Pick<Broker, 'publish'>;
  ca: Pick<HubCa, 'certificatePem'>;
  logger: Logger;
}

/** The `csr` handler for the inbox; `settled()` resolves once every request taken has been answered (tests). */
export function certificateRequests(deps: CertificateRequestDeps): { handle(deviceId: string, request: CertificateRequest): void; settled(): Promise<void> } {
  const { issuer, broker, ca, logger } = deps;
  const inFlight = new Map<string, Promise<void>>();

  const answer = async (deviceId: string, request: CertificateRequest): Promise<void> => {
    let message: CertificateAnswer;
    try {
      const issued = await issuer.issue(deviceId, request);
      message = { v: 1, id: request.id, purpose: request.purpose, certificate: issued.certificate, ca: ca.certificatePem, notAfter: issued.notAfter.toISOString() };
      logger.info({ deviceId, purpose: request.purpose, serial: issued.serial, notAfter: message.notAfter }, 'device certificate issued');
    } catch (err) {
      const known = isEdgemlError(err, ErrorCodes.HUB_CSR_REFUSED);
      if (known) logger.warn({ deviceId, purpose: request.purpose, reason: err.message }, 'device certificate request refused');
      else logger.error({ err, deviceId, purpose: request.purpose }, 'cannot sign a device certificate request');
      const error = known ? { code: err.code, message: err.message.slice(0, MAX_ANSWER_MESSAGE) } : { code: ErrorCodes.INTERNAL, message: 'the hub could not sign the request; ask again later' };
      message = { v: 1, id: request.id, purpose: request.purpose, error };
    }
    await broker.publish(deviceTopic(deviceId, 'cert'), encodeMessage('cert', message), { qos: 1, retain: false });
  };

  return {
    handle(deviceId, request) {
      if (inFlight.has(deviceId) || inFlight.size >= MAX_IN_FLIGHT) {
        logger.debug({ deviceId, busy: inFlight.size }, 'certificate request ignored: one is in flight already');
        return;
      }
      const done = answer(deviceId, request)
        .catch((err: unknown) => logger.error({ err: err instanceof EdgemlError ? err.message : err, deviceId }, 'cannot publish a certificate answer'))
        .finally(() => inFlight.delete(deviceId));
      inFlight.set(deviceId, done);
    },
    settled: async () => {
      await Promise.all(inFlight.values());
    },
  };
}
