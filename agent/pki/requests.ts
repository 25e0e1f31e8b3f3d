/**
 * Certificate requests in flight over the hub link: each `csr` message has its own id, and the
 * `cert` answer with that id settles it. Answers are not retained, so one that is lost (hub away,
 * broker restart) is never coming: after `timeoutMs` the request fails and the caller asks again
 * with a new id; a late answer to an old id is ignored. One request at a time: the hub takes one
 * per device and ignores what comes on top (a gateway and a client request at once would cost
 * the second one a timeout).
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { PROTOCOL_VERSION, type CertificateAnswer, type CertificatePurpose, type CertificateRequest } from '../../shared/protocol.js';

export const DEFAULT_ANSWER_TIMEOUT_MS = 30_000;

export interface CertificateRequestsOptions {
  /** Sends a request to the hub; rejects when it cannot (offline). */
  send(request: CertificateRequest): Promise<void>;
  clock: Clock;
  timeoutMs?: number;
  nextId?: () => string;
}

interface Pending {
  resolve(answer: CertificateAnswer): void;
  reject(err: Error): void;
  timer: unknown;
}

export class CertificateRequests {
  readonly #o: CertificateRequestsOptions;
  readonly #pending = new Map<string, Pending>();
  /** Settles when the request before is settled: the next one waits for it. */
  #previous: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(o: CertificateRequestsOptions) {
    this.#o = o;
  }

  /** The hub's answer (which may carry an error: the caller judges it), or AGENT_E_CERTIFICATE_FAILED when none came in time. */
  request(purpose: CertificatePurpose, csr: string): Promise<CertificateAnswer> {
    const answer = this.#previous.then(() => this.#send(purpose, csr));
    this.#previous = answer.catch(() => undefined);
    return answer;
  }

  #send(purpose: CertificatePurpose, csr: string): Promise<CertificateAnswer> {
    if (this.#closed) return Promise.reject(new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, 'the agent is stopping'));
    const id = this.#o.nextId?.() ?? randomUUID();
    const timeoutMs = this.#o.timeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
    return new Promise<CertificateAnswer>((resolve, reject) => {
      const timer = this.#o.clock.setTimeout(() => {
        this.#pending.delete(id);
        reject(new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `no answer from the hub to the ${purpose} certificate request in ${timeoutMs / 1000} s`, { retryable: true }));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#o.send({ v: PROTOCOL_VERSION, id, purpose, csr }).catch((err: unknown) => {
        if (!this.#settle(id)) return;
        reject(new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `the ${purpose} certificate request could not be sent: ${(err as Error).message}`, { retryable: true, cause: err }));
      });
    });
  }

  /** An answer from the hub; false when no request waits for its id (late, or not ours). */
  answer(answer: CertificateAnswer): boolean {
    const pending = this.#pending.get(answer.id);
    if (!pending || !this.#settle(answer.id)) return false;
    pending.resolve(answer);
    return true;
  }

  /** Fails whatever still waits (the agent is stopping). */
  close(): void {
    this.#closed = true;
    for (const [id, pending] of [...this.#pending]) {
      this.#settle(id);
      pending.reject(new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, 'the agent is stopping'));
    }
  }

  #settle(id: string): boolean {
    const pending = this.#pending.get(id);
    if (!pending) return false;
    this.#o.clock.clearTimeout(pending.timer);
    this.#pending.delete(id);
    return true;
  }
}
