/**
 * What the agent shows the broker, chosen before every connection attempt: the device token (read
 * again from --token-file each time, so a rotated token is picked up without a restart), or with
 * `--auth cert` the device's client certificate once it has one (asked for over a token connection
 * on first contact). A broker that refuses the certificate gets the token again, if there is one,
 * until a new certificate is installed.
 */
import { rootCertificates } from 'node:tls';
import type { Logger } from '../../shared/logger.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { TlsMaterial } from '../pki/material.js';

export interface ConnectionCredentials {
  username?: string;
  password?: string;
  /** Client certificate and its key (PEM), for mutual TLS. */
  key?: string;
  cert?: string;
  /** CAs trusted for an mqtts:// broker (PEM); none = the system's. */
  ca?: Array<string | Buffer>;
}

/** How the previous attempt ended. */
export interface PreviousAttempt {
  /** The broker refused who we said we were (CONNACK 4/5, or a TLS alert about our certificate). */
  refused: boolean;
}

export interface LinkCredentialsOptions {
  deviceId: string;
  auth: 'token' | 'cert';
  token?: string | undefined;
  tokenFile?: string | undefined;
  /** --hub-ca, read at start; without it the system's CAs and the CA stored in DATA/tls are trusted. */
  hubCa?: Buffer | undefined;
  storedCa(): Promise<string | undefined>;
  /** The client certificate in use (auth cert), if any. */
  clientCertificate(): TlsMaterial | null;
  /** The broker refused the client certificate (a new one is worth asking for). */
  onCertificateRefused?: () => void;
  readFile(path: string): Promise<string>;
  logger: Logger;
}

export type CredentialsSource = (previous: PreviousAttempt) => Promise<ConnectionCredentials>;

export interface LinkCredentials {
  next: CredentialsSource;
  /** Whether the last credentials handed out were a client certificate. */
  showsCertificate(): boolean;
}

export function linkCredentials(o: LinkCredentialsOptions): LinkCredentials {
  /** Serial of the certificate the broker refused; a newer one is tried again. */
  let refusedSerial: string | null = null;
  /** Serial of the certificate shown on the last attempt, if one was. */
  let shownSerial: string | null = null;
  const hasToken = o.token !== undefined || o.tokenFile !== undefined;

  const readToken = async (): Promise<string | undefined> => {
    if (o.tokenFile === undefined) return o.token;
    let token: string;
    try {
      token = (await o.readFile(o.tokenFile)).trim();
    } catch (err) {
      throw new EdgemlError(ErrorCodes.AGENT_TOKEN_FILE_UNREADABLE, `cannot read the token file ${o.tokenFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { retryable: true, cause: err });
    }
    if (token === '') throw new EdgemlError(ErrorCodes.AGENT_TOKEN_FILE_UNREADABLE, `the token file ${o.tokenFile} is empty`, { retryable: true });
    return token;
  };

  const trusted = async (): Promise<Array<string | Buffer> | undefined> => {
    if (o.hubCa) return [o.hubCa];
    const stored = await o.storedCa();
    // Beside the system's, not instead: a broker with an operator's certificate from a public CA
    // must still be trusted once the hub has sent its own CA for the gateway.
    return stored === undefined ? undefined : [...rootCertificates, stored];
  };

  const next: CredentialsSource = async (previous) => {
    if (previous.refused && shownSerial !== null && hasToken) {
      refusedSerial = shownSerial;
      o.logger.warn({ serial: shownSerial }, 'the hub refused the client certificate; connecting with the token');
      o.onCertificateRefused?.();
    }
    const ca = await trusted();
    const base = ca ? { ca } : {};
    const certificate = o.auth === 'cert' ? o.clientCertificate() : null;
    if (certificate && certificate.serial !== refusedSerial) {
      shownSerial = certificate.serial;
      // The certificate says who we are: no username, no password.
      return { ...base, key: certificate.key, cert: certificate.certificate };
    }
    shownSerial = null;
    const password = await readToken();
    return { ...base, username: o.deviceId, ...(password === undefined ? {} : { password }) };
  };
  return { next, showsCertificate: () => shownSerial !== null };
}
