/**
 * The device's certificates wired to its hub link: requests go out over `csr` once the link's
 * subscriptions are in place (answers are not retained), answers come back over `cert`; a gateway
 * keeper with `--gateway-tls auto`, a client keeper with `--auth cert`, whose first certificate
 * makes the link connect again at once (a renewed one is used from the next connection on), and the
 * link's credentials for each connection attempt.
 */
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CertificateAnswer } from '../../shared/protocol.js';
import { linkCredentials, type CredentialsSource, type LinkCredentialsOptions } from '../link/credentials.js';
import type { HubLink } from '../link/hub-link.js';
import { CertificateKeeper } from './keeper.js';
import type { TlsMaterial } from './material.js';
import type { SubjectName } from './names.js';
import { CertificateRequests } from './requests.js';
import { readStoredCa } from './tls-files.js';

export interface DeviceCertificatesOptions {
  deviceId: string;
  /** DATA/tls */
  dir: string;
  /** With `--gateway-tls auto`: the names to ask for, and where each new certificate goes. */
  gateway?: { names(): SubjectName[]; onInstalled(material: TlsMaterial): void } | undefined;
  /** The broker login: `--auth`, the token or its file, `--hub-ca`. */
  login: Pick<LinkCredentialsOptions, 'auth' | 'token' | 'tokenFile' | 'hubCa' | 'readFile'>;
  /** The hub link, made after these (it takes `credentials`). */
  link(): Pick<HubLink, 'subscribed' | 'publish' | 'reconnect'>;
  clock: Clock;
  logger: Logger;
}

export interface DeviceCertificates {
  /** The stored gateway certificate, if it is good: the gateway starts with it. */
  readonly storedGateway: TlsMaterial | null;
  /** For the link: what to show the broker on each connection attempt. */
  readonly credentials: CredentialsSource;
  /** For the link: an answer on the `cert` channel. */
  answer(answer: CertificateAnswer): void;
  /** For the link: its subscriptions are in place; what waits to be asked goes now. */
  subscribed(): void;
  close(): Promise<void>;
}

export async function deviceCertificates(o: DeviceCertificatesOptions): Promise<DeviceCertificates> {
  const { deviceId, dir, clock, logger } = o;
  const requests = new CertificateRequests({
    // Offline, a QoS 1 publish would wait for the broker, and before the subscription the answer
    // would be lost: fail now, and the keeper asks again once the link is subscribed.
    send: async (request) => {
      if (!o.link().subscribed()) throw new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, 'not connected to the hub', { retryable: true });
      await o.link().publish('csr', request);
    },
    clock,
  });
  const keeper = (purpose: 'gateway' | 'client', names: () => SubjectName[], onInstalled: (m: TlsMaterial) => void) =>
    new CertificateKeeper({ purpose, dir, subject: () => ({ commonName: deviceId, names: names() }), requests, onInstalled, clock, logger });

  const gateway = o.gateway ? keeper('gateway', o.gateway.names, o.gateway.onInstalled) : undefined;
  const client =
    o.login.auth === 'cert'
      ? keeper('client', () => [], () => {
          if (!credentials.showsCertificate()) o.link().reconnect();
        })
      : undefined;
  const storedGateway = (await gateway?.load()) ?? null;
  await client?.load();
  const keepers = [gateway, client].filter((k) => k !== undefined);
  const credentials = linkCredentials({
    ...o.login,
    deviceId,
    storedCa: () => readStoredCa(dir),
    clientCertificate: () => client?.current() ?? null,
    onCertificateRefused: () => client?.renew(),
    logger,
  });

  return {
    storedGateway,
    credentials: credentials.next,
    answer: (answer) => {
      if (!requests.answer(answer)) logger.debug({ id: answer.id, purpose: answer.purpose }, 'a certificate answer no request waits for (late, or asked again since)');
    },
    subscribed: () => {
      for (const k of keepers) {
        k.start();
        k.retryNow();
      }
    },
    close: async () => {
      requests.close();
      await Promise.all(keepers.map((k) => k.close()));
    },
  };
}
