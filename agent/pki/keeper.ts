/**
 * Keeps one certificate of the device (its gateway's, or its MQTT client's) valid: the stored one
 * if it still fits, otherwise a new one from the hub; renewed two-thirds into its life with a new
 * key, asking again with backoff while the hub is away or does not answer. Each certificate put to
 * use goes to `onInstalled` (the gateway swaps its TLS context; the link uses it on its next
 * connection). A new certificate is used first and stored after (again with backoff when the disk
 * refuses): every certificate the hub issues counts against the device, none is thrown away.
 */
import { backoffDelay, defaultBackoff, type BackoffPolicy } from '../../shared/backoff.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CertificateAnswer, CertificatePurpose } from '../../shared/protocol.js';
import { generateKeyPair, privateKeyPem, x509 } from '../../shared/pki/x509.js';
import { createCsr, type CsrSubject } from './csr.js';
import type { CertificateRequests } from './requests.js';
import { checkMaterial, renewalTime, type TlsMaterial } from './material.js';
import { nameKey } from './names.js';
import { loadMaterial, saveMaterial } from './tls-files.js';

/** Longer timers overflow Node's 32-bit delay and fire at once; a long wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The shortest wait before a renewal that is already due (a stored certificate past two-thirds): never a loop. */
const MIN_RENEWAL_DELAY_MS = 60_000;
/** A gateway certificate naming other addresses than served now is renewed at most this often. */
export const NAMES_RENEWAL_INTERVAL_MS = 5 * 60_000;

export interface CertificateKeeperOptions {
  purpose: CertificatePurpose;
  /** DATA/tls */
  dir: string;
  /** What to ask for, read at each request (addresses may have changed). */
  subject(): CsrSubject;
  requests: Pick<CertificateRequests, 'request'>;
  onInstalled(material: TlsMaterial): void;
  clock: Clock;
  logger: Logger;
  backoff?: BackoffPolicy;
  random?: () => number;
}

export class CertificateKeeper {
  readonly #o: CertificateKeeperOptions;
  #current: TlsMaterial | null = null;
  /** When the current certificate is due for renewal, on this device's clock. */
  #renewAt = 0;
  #timer: unknown = null;
  readonly #wakers = new Map<'obtain' | 'save', () => void>();
  #running: Promise<void> | null = null;
  #saving: Promise<void> | null = null;
  /** The certificate last written to DATA/tls. */
  #stored: TlsMaterial | null = null;
  /** Bumped by every certificate put to use: a request loop that sees it change has nothing left to do. */
  #installs = 0;
  /** When a renewal for changed names was last asked for. */
  #namesRenewedAt: number | null = null;
  #closed = false;

  constructor(o: CertificateKeeperOptions) {
    this.#o = o;
  }

  /** The certificate in use, if any. */
  current(): TlsMaterial | null {
    return this.#current;
  }

  /**
   * Takes up the stored certificate when it is whole, matches its key and has not expired; the
   * caller starts with it (onInstalled is for the ones that come later). Starts nothing: renewal
   * is scheduled by start().
   */
  async load(): Promise<TlsMaterial | null> {
    const stored = await loadMaterial(this.#o.dir, this.#o.purpose, this.#o.clock.now(), this.#o.logger);
    if (!stored) return null;
    // From its own dates: nothing tells when it was received.
    this.#stored = stored;
    this.#use(stored, 'stored', renewalTime(stored));
    return stored;
  }

  /**
   * Called on every (re)connection of the link: asks now when there is no certificate, or when a
   * gateway certificate names other addresses than served now (at most every 5 minutes: a device
   * that booted before DHCP gets its names later); otherwise schedules the renewal if it is not.
   */
  start(): void {
    if (this.#closed) return;
    if (!this.#current || this.#namesChanged(this.#current)) this.renew();
    else if (this.#timer === null && !this.#running) this.#schedule();
  }

  /** Asks the hub for a new certificate now (unless a request is under way). */
  renew(): void {
    if (this.#closed || this.#running) return;
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    const running: Promise<void> = this.#obtain().finally(() => {
      if (this.#running === running) this.#running = null;
    });
    this.#running = running;
  }

  /** Cuts a backoff wait short (the hub link is back): a request waiting to be retried goes now. */
  retryNow(): void {
    this.#wakers.get('obtain')?.();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    for (const wake of [...this.#wakers.values()]) wake();
    await this.#running;
    await this.#saving;
  }

  #namesChanged(material: TlsMaterial): boolean {
    if (material.purpose !== 'gateway') return false;
    const wanted = this.#o.subject().names.map(nameKey).sort();
    const has = sanOf(material.certificate).map(nameKey).sort();
    if (wanted.join() === has.join()) return false;
    const now = this.#o.clock.now();
    if (this.#namesRenewedAt !== null && now - this.#namesRenewedAt < NAMES_RENEWAL_INTERVAL_MS) return false;
    this.#namesRenewedAt = now;
    this.#o.logger.info({ purpose: material.purpose, wanted, has }, 'the gateway certificate does not name what is served now; serving it until a new one comes');
    return true;
  }

  async #obtain(): Promise<void> {
    const { purpose, logger } = this.#o;
    const installs = this.#installs;
    for (let attempt = 0; !this.#closed && this.#installs === installs; attempt++) {
      try {
        const material = await this.#requestOnce();
        // Done before onInstalled runs: a renewal due from then on must not find one under way.
        this.#running = null;
        if (!this.#closed) this.#accept(material, 'hub');
        return;
      } catch (err) {
        if (this.#closed || this.#installs !== installs) return;
        const delay = backoffDelay(attempt, this.#o.backoff ?? defaultBackoff, this.#o.random);
        logger.warn({ purpose, err: (err as Error).message, code: (err as { code?: unknown }).code, retryInMs: delay }, 'could not get a certificate from the hub; asking again');
        await this.#sleep(delay, 'obtain');
      }
    }
  }

  async #requestOnce(): Promise<TlsMaterial> {
    const { purpose } = this.#o;
    // A new key for every certificate: a key that leaked once is useless after the next renewal.
    const keys = await generateKeyPair();
    const key = privateKeyPem(keys.privateKey);
    const answer = await this.#o.requests.request(purpose, await createCsr(purpose, keys, this.#o.subject()), (late) => this.#acceptLate(key, late));
    return this.#check(key, answer);
  }

  #check(key: string, answer: CertificateAnswer): TlsMaterial {
    const { purpose } = this.#o;
    if (answer.error) {
      throw new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `the hub refused the ${purpose} certificate request: ${answer.error.code}: ${answer.error.message}`, { retryable: true });
    }
    if (answer.certificate === undefined || answer.ca === undefined) {
      throw new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `the hub's answer to the ${purpose} certificate request has no certificate or no CA`, { retryable: true });
    }
    return checkMaterial(purpose, { key, certificate: answer.certificate, ca: answer.ca }, this.#o.clock.now());
  }

  /** An answer to a request that had timed out: the hub issued it, so it is used if it is good and newer. */
  #acceptLate(key: string, answer: CertificateAnswer): void {
    if (this.#closed) return;
    let material: TlsMaterial;
    try {
      material = this.#check(key, answer);
    } catch (err) {
      this.#o.logger.debug({ purpose: this.#o.purpose, id: answer.id, reason: (err as Error).message }, 'a late certificate answer is of no use');
      return;
    }
    if (this.#current && this.#current.notAfter >= material.notAfter) return;
    this.#accept(material, 'late answer');
    // A request loop waiting out a backoff has nothing left to ask for.
    this.#wakers.get('obtain')?.();
  }

  /** A certificate from the hub: used at once, then stored. */
  #accept(material: TlsMaterial, source: 'hub' | 'late answer'): void {
    this.#installs++;
    // From this device's clock at receipt: a clock ahead of the hub's would otherwise find it due at once.
    this.#use(material, source, this.#o.clock.now() + ((material.notAfter.getTime() - material.notBefore.getTime()) * 2) / 3);
    try {
      this.#o.onInstalled(material);
    } catch (err) {
      this.#o.logger.error({ purpose: material.purpose, serial: material.serial, err: (err as Error).message }, 'could not put the new certificate to use');
    }
    this.#schedule();
    this.#persist();
  }

  #use(material: TlsMaterial, source: 'stored' | 'hub' | 'late answer', renewAt: number): void {
    this.#current = material;
    this.#renewAt = renewAt;
    const { serial, notAfter, names } = material;
    this.#o.logger.info(
      { purpose: material.purpose, serial, notAfter: notAfter.toISOString(), ...(material.purpose === 'gateway' ? { names } : {}), source, renewAt: new Date(renewAt).toISOString() },
      `${material.purpose} certificate installed`,
    );
  }

  #schedule(): void {
    const material = this.#current;
    if (!material) return;
    const lifetime = material.notAfter.getTime() - material.notBefore.getTime();
    const floor = Math.min(lifetime / 3, MIN_RENEWAL_DELAY_MS);
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = this.#o.clock.setTimeout(
      () => {
        this.#timer = null;
        if (this.#o.clock.now() < this.#renewAt) this.#schedule();
        else this.renew();
      },
      Math.min(MAX_TIMER_MS, Math.max(floor, this.#renewAt - this.#o.clock.now())),
    );
  }

  /** Stores the certificate in use, again with backoff while the disk refuses; the newest one last. */
  #persist(): void {
    if (this.#saving) return;
    const { dir, purpose, logger } = this.#o;
    this.#saving = (async () => {
      // Closing still stores the newest once: it is the one in use.
      for (let attempt = 0; this.#current !== this.#stored; ) {
        const material = this.#current!;
        try {
          await saveMaterial(dir, material);
          this.#stored = material;
          attempt = 0;
        } catch (err) {
          if (this.#closed) return logger.error({ purpose, serial: material.serial, err: (err as Error).message }, 'could not store the certificate; the next start asks for a new one');
          const delay = backoffDelay(attempt++, this.#o.backoff ?? defaultBackoff, this.#o.random);
          logger.warn({ purpose, serial: material.serial, err: (err as Error).message, code: (err as { code?: unknown }).code, retryInMs: delay }, 'could not store the certificate (it is in use); trying again');
          await this.#sleep(delay, 'save');
        }
      }
    })().finally(() => {
      this.#saving = null;
      // One that came while the loop was ending.
      if (!this.#closed && this.#current !== this.#stored) this.#persist();
    });
  }

  #sleep(ms: number, slot: 'obtain' | 'save'): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#o.clock.clearTimeout(timer);
        this.#wakers.delete(slot);
        resolve();
      };
      const timer = this.#o.clock.setTimeout(done, ms);
      this.#wakers.set(slot, done);
    });
  }
}

function sanOf(pem: string): Array<{ type: string; value: string }> {
  return new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
}
