/**
 * Whom the CLI trusts over HTTPS, and what it says when a TLS connection fails. With a CA given
 * (`--ca`, EDGEML_CA) only that CA is trusted, as `curl --cacert` does; without one, Node's roots.
 * A failed handshake becomes one line with CLI_E_TLS: what could not be verified, where, and what
 * to do, without OpenSSL's internals (a wrong-version record error carries a source path).
 */
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity, connect, type PeerCertificate } from 'node:tls';
import type { Dispatcher } from 'undici';
import { isLoopbackHost, unbracket } from '../shared/address.js';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../shared/errors.js';

/** What to tell the user when the hub's CA is missing or wrong. */
export const HUB_CA_HINT = "pass the hub's CA with --ca FILE or EDGEML_CA (`edgeml hub ca` prints it)";

/** Checks that `pem` holds a certificate before any connection needs it; `label` names where it came from. */
export function parseCaPem(pem: string, label: string): string {
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new EdgemlError(ErrorCodes.CLI_INPUT_INVALID, `${label}: not a PEM certificate (\`edgeml hub ca\` prints the hub's)`, { cause: err });
  }
  return pem;
}

/** Whether a key sent to `url` would cross the network unencrypted: plain http to a host other than this machine. */
export function inClearOffLoopback(url: URL): boolean {
  return url.protocol === 'http:' && !isLoopbackHost(unbracket(url.hostname));
}

export type IdentityCheck = (host: string, cert: PeerCertificate) => Error | undefined;

/**
 * An undici dispatcher that trusts only `ca`, and checks the server's identity with `identity`
 * when given (Node's name check otherwise); undefined (undici's global one, Node's roots) without a CA.
 */
export async function trustingDispatcher(ca: string | undefined, identity?: IdentityCheck): Promise<Dispatcher | undefined> {
  if (ca === undefined) return undefined;
  // Loaded on first use, like the rest of undici in the CLI.
  const { Agent } = await import('undici');
  return new Agent({ connect: { ca, ...(identity ? { checkServerIdentity: identity } : {}) } });
}

/**
 * The name check plus: the certificate is the one the hub issued to `deviceId` (CN=device id in
 * every device certificate). Every gateway's certificate comes from the same CA, so without this a
 * device could answer for another device's address with its own certificate.
 */
export function deviceIdentity(deviceId: string, peer: TlsPeer): IdentityCheck {
  return (host, cert) => {
    const nameError = checkServerIdentity(host, cert);
    if (nameError) return nameError;
    const cn = cert.subject?.CN;
    if (cn === deviceId) return undefined;
    const whose = cn === undefined ? 'a certificate with no device id' : `the certificate of device ${String(cn)}`;
    return line(`${peer.name} at ${peer.url} shows ${whose}, not one of ${deviceId}: another device may be answering at its address`);
  };
}

/** Certificate chains that do not lead to a trusted CA. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

const TIME = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** OpenSSL's answers to a server that is not speaking TLS at all. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);
/**
 * EPROTO is any TLS protocol failure, whose text carries OpenSSL's reason: these reasons mean the
 * server did not speak TLS; others (a handshake failure alert from a gateway still waiting for its
 * certificate) mean it did.
 */
const NOT_TLS_REASON = /wrong version number|http request|packet length too long/i;
/** The reason in OpenSSL's `error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure:…`. */
const OPENSSL_REASON = /SSL routines:[^:]*:([^:]+)/;

export interface TlsPeer {
  /** `the hub` or `the gateway of dev-1`. */
  name: string;
  url: string;
  /** What to do about a certificate that does not verify. */
  caHint: string;
  /** What to do about a certificate that does not carry the name connected to. */
  nameHint: string;
}

function line(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.CLI_TLS, message, { cause });
}

/**
 * The one-line CLI_E_TLS for a failed request to `peer`, or undefined when the failure was not
 * about TLS: a certificate or handshake failure, or a plain-http URL whose server speaks HTTPS.
 */
export async function tlsError(err: unknown, peer: TlsPeer): Promise<EdgemlError | undefined> {
  return tlsFailure(err, peer) ?? (await plainHttpToTls(err, peer));
}

function tlsFailure(err: unknown, peer: TlsPeer): EdgemlError | undefined {
  const e = err as { code?: unknown; message?: unknown; host?: unknown; cert?: { subjectaltname?: unknown } } | null;
  // An identity check's own refusal (deviceIdentity) is already the line to show.
  if (isEdgemlError(err, ErrorCodes.CLI_TLS)) return err;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code === undefined) return undefined;
  const text = typeof e?.message === 'string' ? e.message : '';
  const whose = `${peer.name}'s certificate at ${peer.url}`;
  if (UNTRUSTED.has(code)) {
    // Node's text for these codes is plain English ("self-signed certificate in certificate chain").
    return line(`cannot verify ${whose}: ${String(e?.message)}; ${peer.caHint}`, err);
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = typeof e?.cert?.subjectaltname === 'string' ? e.cert.subjectaltname : 'no names';
    return line(`${whose} is not for ${String(e?.host)} (it names ${names}); ${peer.nameHint}`, err);
  }
  if (TIME.has(code)) {
    const when = code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet';
    return line(`${whose} ${when} (check the clocks of this machine and of ${peer.name})`, err);
  }
  if (NOT_TLS.has(code) || (code === 'EPROTO' && NOT_TLS_REASON.test(text))) {
    return line(`${peer.name} at ${peer.url} does not speak HTTPS (is it plain HTTP? then use http://)`, err);
  }
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('CERT_')) {
    return line(`the TLS handshake with ${peer.name} at ${peer.url} failed (${OPENSSL_REASON.exec(text)?.[1] ?? code})`, err);
  }
  return undefined;
}

/**
 * Whether `host:port` completes a TLS handshake. A TLS server spoken to in plain HTTP just closes
 * the connection, which looks like a crashed server; this tells the two apart. Certificates are
 * not checked: nothing is sent over this connection.
 */
export function speaksTls(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, rejectUnauthorized: false, timeout: timeoutMs });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
    socket.once('close', () => done(false));
  });
}

/** CLI_E_TLS for a plain-http URL whose server closed the connection because it speaks TLS; else undefined. */
async function plainHttpToTls(err: unknown, peer: Pick<TlsPeer, 'name' | 'url'>): Promise<EdgemlError | undefined> {
  if ((err as { code?: unknown } | null)?.code !== 'UND_ERR_SOCKET') return undefined;
  const url = new URL(peer.url);
  if (url.protocol !== 'http:') return undefined;
  if (!(await speaksTls(unbracket(url.hostname), Number(url.port || 80)))) return undefined;
  return line(`${peer.name} at ${peer.url} speaks HTTPS: use ${peer.url.replace(/^http:/, 'https:')}`, err);
}
