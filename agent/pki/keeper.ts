/**
 * Keeps one certificate of the device (its gateway's, or its MQTT client's) valid: the stored one
 * if it still fits, otherwise a new one from the hub; renewed two-thirds into its life with a new
 * key, asking again with backoff while the hub is away or does not answer. Each certificate put to
 * use goes to `onInstalled` (the gateway swaps its TLS context; the link uses it on its next connection).
 */
import { backoffDelay, defaultBackoff, type BackoffPolicy } from '../../shared/backoff.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CertificateAnswer, CertificatePurpose } from '../../shared/protocol.js';
import { generateKeyPair, privateKeyPem, x509 } from '../../shared/pki/x509.js';
import { createCsr, type CsrSubject } from './csr.js';
import { checkMaterial, renewalTime, type TlsMaterial } from './material.js';
import { loadMaterial, saveMaterial } from './tls-files.js';

/** Longer timers overflow Node's 32-bit delay and fire at once; a long wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CertificateKeeperOptions {
  purpose: CertificatePurpose;
  /** DATA/tls */
  dir: string;
  /** What to ask for, read at each request (addresses may have changed). */
  subject(): CsrSubject;
  requests: { request(purpose: CertificatePurpose, csr: string): Promise<CertificateAnswer> };
  onInstalled(material: TlsMaterial): void;
  clock: Clock;
  logger: Logger;
  backoff?: BackoffPolicy;
  random?: () => number;
}

export class CertificateKeeper {
  readonly #o: CertificateKeeperOptions;
  #current: TlsMaterial | null = null;
  #timer: unknown = null;
  #wake: (() => void) | null = null;
  #running: Promise<void> | null = null;
  #closed = false;
  /** The stored certificate does not name what is asked for now (an address changed): renew at start. */
  #outdated = false;

  constructor(o: CertificateKeeperOptions) {
    this.#o = o;
  }

  /** The certificate in use, if any. */
  current(): TlsMaterial | null {
    return this.#current;
  }

  /**
   * Takes up the stored certificate when it is whole, matches its key and has not expired; the
   * caller starts with it (onInstalled is for the ones that come later).
   */
  async load(): Promise<TlsMaterial | null> {
    const stored = await loadMaterial(this.#o.dir, this.#o.purpose, this.#o.clock.now(), this.#o.logger);
    if (!stored) return null;
    this.#install(stored, 'stored');
    // A client certificate names the device (its CN), whatever addresses it has.
    if (this.#o.purpose !== 'gateway') return stored;
    const wanted = nameKeys(this.#o.subject().names);
    const has = nameKeys(sanOf(stored.certificate));
    if (wanted.join() !== has.join()) {
      this.#outdated = true;
      this.#o.logger.info({ purpose: this.#o.purpose, wanted, has }, 'the stored certificate does not name what is served now; serving it until a new one comes');
    }
    return stored;
  }

  /**
   * Asks now when there is no certificate, or the stored one names other addresses, and no request
   * is under way (a stored one's renewal is already scheduled).
   */
  start(): void {
    if (!this.#current || this.#outdated) this.renew();
    this.#outdated = false;
  }

  /** Asks the hub for a new certificate now (unless a request is under way). */
  renew(): void {
    if (this.#closed || this.#running) return;
    this.#o.clock.clearTimeout(this.#timer);
    this.#running = this.#obtain().finally(() => {
      this.#running = null;
    });
  }

  /** Cuts a backoff wait short (the hub link is back): a request waiting to be retried goes now. */
  retryNow(): void {
    this.#wake?.();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#o.clock.clearTimeout(this.#timer);
    this.#wake?.();
    await this.#running;
  }

  async #obtain(): Promise<void> {
    const { purpose, logger } = this.#o;
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        const material = await this.#requestOnce();
        if (this.#closed) return;
        await saveMaterial(this.#o.dir, material);
        this.#install(material, 'hub');
        return;
      } catch (err) {
        if (this.#closed) return;
        const delay = backoffDelay(attempt, this.#o.backoff ?? defaultBackoff, this.#o.random);
        logger.warn({ purpose, err: (err as Error).message, code: (err as { code?: unknown }).code, retryInMs: delay }, 'could not get a certificate from the hub; asking again');
        await this.#sleep(delay);
      }
    }
  }

  async #requestOnce(): Promise<TlsMaterial> {
    const { purpose } = this.#o;
    // A new key for every certificate: a key that leaked once is useless after the next renewal.
    const keys = await generateKeyPair();
    const key = privateKeyPem(keys.privateKey);
    const answer = await this.#o.requests.request(purpose, await createCsr(purpose, keys, this.#o.subject()));
    if (answer.error) {
      throw new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `the hub refused the ${purpose} certificate request: ${answer.error.code}: ${answer.error.message}`, { retryable: true });
    }
    if (answer.certificate === undefined || answer.ca === undefined) {
      throw new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `the hub's answer to the ${purpose} certificate request has no certificate or no CA`, { retryable: true });
    }
    return checkMaterial(purpose, { key, certificate: answer.certificate, ca: answer.ca }, this.#o.clock.now());
  }

  #install(material: TlsMaterial, source: 'stored' | 'hub'): void {
    this.#current = material;
    const { serial, notAfter, names } = material;
    this.#o.logger.info(
      { purpose: material.purpose, serial, notAfter: notAfter.toISOString(), ...(material.purpose === 'gateway' ? { names } : {}), source, renewAt: new Date(renewalTime(material)).toISOString() },
      `${material.purpose} certificate installed`,
    );
    if (source === 'hub') this.#o.onInstalled(material);
    this.#schedule(material);
  }

  #schedule(material: TlsMaterial): void {
    const at = renewalTime(material);
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = this.#o.clock.setTimeout(
      () => {
        if (this.#o.clock.now() < at) this.#schedule(material);
        else this.renew();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, at - this.#o.clock.now())),
    );
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#o.clock.setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        this.#o.clock.clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
    });
  }
}

function sanOf(pem: string): Array<{ type: string; value: string }> {
  return new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
}

/** Comparable, order-free: `dns:localhost`, `ip:::1`. */
function nameKeys(names: Array<{ type: string; value: string }>): string[] {
  return names.map((n) => `${n.type}:${n.value.toLowerCase()}`).sort();
}
