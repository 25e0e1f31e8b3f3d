/**
 * Certificate requests in flight over the hub link: each `csr` message has its own id, and the
 * `cert` answer with that id settles it. Answers are not retained, so one that is lost (hub away,
 * broker restart) is never coming: after `timeoutMs` the request fails and the caller asks again
 * with a new id. A late answer to an old id still goes to the request's `onLate` for a while (the
 * hub issued that certificate: it counts against the device). One request at a time: the hub takes one
 * per device and ignores what comes on top (a gateway and a client request at once would cost
 * the second one a timeout).
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { PROTOCOL_VERSION, type CertificateAnswer, type CertificatePurpose, type CertificateRequest } from '../../shared/protocol.js';

export const DEFAULT_ANSWER_TIMEOUT_MS = 30_000;
/** How long after its timeout an answer to a request is still taken (the key waits that long). */
export const DEFAULT_LATE_ANSWER_MS = 5 * 60_000;

export interface CertificateRequestsOptions {
  /** Sends a request to the hub; rejects when it cannot (offline). */
  send(request: CertificateRequest): Promise<void>;
  clock: Clock;
  timeoutMs?: number;
  lateAnswerMs?: number;
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
  /** Requests that timed out, by id: until when an answer is still taken, and where it goes. */
  readonly #late = new Map<string, { until: number; onLate(answer: CertificateAnswer): void }>();
  /** Settles when the request before is settled: the next one waits for it. */
  #previous: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(o: CertificateRequestsOptions) {
    this.#o = o;
  }

  /**
   * The hub's answer (which may carry an error: the caller judges it), or AGENT_E_CERTIFICATE_FAILED
   * when none came in time; an answer that comes after that, within `lateAnswerMs`, goes to `onLate`.
   */
  request(purpose: CertificatePurpose, csr: string, onLate?: (answer: CertificateAnswer) => void): Promise<CertificateAnswer> {
    const answer = this.#previous.then(() => this.#send(purpose, csr, onLate));
    this.#previous = answer.catch(() => undefined);
    return answer;
  }

  #send(purpose: CertificatePurpose, csr: string, onLate: ((answer: CertificateAnswer) => void) | undefined): Promise<CertificateAnswer> {
    if (this.#closed) return Promise.reject(new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, 'the agent is stopping'));
    const id = this.#o.nextId?.() ?? randomUUID();
    const timeoutMs = this.#o.timeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
    return new Promise<CertificateAnswer>((resolve, reject) => {
      const timer = this.#o.clock.setTimeout(() => {
        this.#pending.delete(id);
        // Kept without a timer (none keeps the process up): expired entries go on the next answer.
        if (onLate) this.#late.set(id, { until: this.#o.clock.now() + (this.#o.lateAnswerMs ?? DEFAULT_LATE_ANSWER_MS), onLate });
        reject(new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `no answer from the hub to the ${purpose} certificate request in ${timeoutMs / 1000} s`, { retryable: true }));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#o.send({ v: PROTOCOL_VERSION, id, purpose, csr }).catch((err: unknown) => {
        if (!this.#settle(id)) return;
        reject(new EdgemlError(ErrorCodes.AGENT_CERTIFICATE_FAILED, `the ${purpose} certificate request could not be sent: ${(err as Error).message}`, { retryable: true, cause: err }));
      });
    });
  }

  /** An answer from the hub; false when no request waits for its id (too late, or not ours). */
  answer(answer: CertificateAnswer): boolean {
    const pending = this.#pending.get(answer.id);
    if (pending && this.#settle(answer.id)) {
      pending.resolve(answer);
      return true;
    }
    const now = this.#o.clock.now();
    for (const [id, late] of this.#late) if (late.until <= now) this.#late.delete(id);
    const late = this.#late.get(answer.id);
    if (!late) return false;
    this.#late.delete(answer.id);
    late.onLate(answer);
    return true;
  }

  /** Fails whatever still waits (the agent is stopping). */
  close(): void {
    this.#closed = true;
    this.#late.clear();
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
