/**
 * Creates (and changes, and deletes) that are safe to retry. Such a POST or DELETE may carry
 * `Idempotency-Key` (1–255 visible ASCII characters), scoped to the calling API key. The mark —
 * that key and a fingerprint of the request — is stored inside the record's actor (`createdBy`,
 * `deletedBy`, …), in the same store write as the change itself: whatever instant the hub dies at,
 * the record and its mark exist together or not at all, and no second table can disagree with
 * them. A retry with the same key finds the record and answers it again, with
 * `Idempotent-Replayed: true`; a different request under the same key gets 422. Secrets stay hashed
 * at rest: under an Idempotency-Key the create derives its secret from the hub secret
 * (hub-secret.ts), so the replay derives the same one. A failed request stored nothing and is not
 * remembered. Requests with the same key run one after the other: a second one waits for the first
 * and answers its outcome. Marks live as long as their records (at least 24 h).
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { ErrorBody } from '../../shared/api/common.js';
import { discardRestOfBody } from '../../shared/discard-body.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { newSecret } from '../../shared/secrets.js';
import { actorOf } from '../auth/api-keys.js';
import { deriveSecret } from '../auth/hub-secret.js';
import { canonicalJson } from '../registry/canonical-json.js';
import type { ActorRecord } from '../store/store.js';
import { requestKey } from './auth.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const REPLAYED_HEADER = 'idempotent-replayed';

export const IdempotencyKey = Type.String({
  pattern: '^[\\x21-\\x7e]{1,255}$',
  description:
    'Makes this request safe to retry: a retry with the same key (and the same API key) answers the original outcome, secret included, with `Idempotent-Replayed: true`; another request under the same key gets 422 HUB_E_IDEMPOTENCY_MISMATCH. A second request while the first is running waits for it. Failed requests are not remembered. 1–255 visible ASCII characters, e.g. a random UUID.',
  examples: ['9b2c6f0e-3d4a-4c5e-8f61-2a7b9c0d1e2f'],
});
const IdempotencyHeaders = Type.Object({ [IDEMPOTENCY_HEADER]: Type.Optional(IdempotencyKey) });

/** Does `actor` mark the record as made by this caller under this key? */
export type MadeBy = (actor: ActorRecord | null | undefined) => boolean;

/** How a creating route finds and renders what a key created: the registry entry of one route. */
export interface IdempotentCreate {
  /** The status the create answers. */
  status: number;
  /** The answer for the record `made` accepts, or undefined; `secret` is the one the create derived. */
  find(made: MadeBy, secret: string): Promise<{ by: ActorRecord; body: unknown } | undefined>;
}

interface IdempotentRequest {
  key: string;
  fingerprint: string;
  secret: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Honours Idempotency-Key (see idempotency.ts). */
    idempotent?: IdempotentCreate;
  }
  interface FastifyRequest {
    idempotency: IdempotentRequest | null;
  }
}

/** Method, path, query and body; a streamed upload (unread yet) by its type and length. */
function fingerprintOf(req: FastifyRequest, path: string): string {
  const streamed = req.body === undefined ? { type: req.headers['content-type'] ?? null, length: req.headers['content-length'] ?? null } : null;
  return createHash('sha256')
    .update(canonicalJson({ method: req.method, path, query: req.query ?? null, body: req.body ?? null, streamed }))
    .digest('base64url');
}

/** Runs the tasks of one key one after the other. */
class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const mine = (this.#tails.get(key) ?? Promise.resolve()).then(task);
    const tail = mine.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await mine;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

export function installIdempotency(app: FastifyInstance, hubSecret: Buffer): void {
  const queue = new KeyedQueue();
  app.decorateRequest('idempotency', null);
  app.addHook('onRoute', (route) => {
    const create = route.config?.idempotent;
    if (!create) return;
    const schema = route.schema ?? {};
    const response = (schema as { response?: Record<number, unknown> }).response;
    route.schema = { ...schema, headers: IdempotencyHeaders, ...(response ? { response: { ...response, 422: ErrorBody } } : {}) };
    const handler = route.handler as RouteHandlerMethod;
    route.handler = async function idempotentHandler(this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) {
      const key = req.headers[IDEMPOTENCY_HEADER];
      if (typeof key !== 'string') return handler.call(this, req, reply);
      const caller = requestKey(req).id;
      const path = req.url.split('?')[0]!;
      const fingerprint = fingerprintOf(req, path);
      const secret = deriveSecret(hubSecret, [caller, key, req.method, path]);
      const made: MadeBy = (actor) => actor?.keyId === caller && actor.idempotency?.key === key;
      return queue.run(`${caller}\0${key}`, async () => {
        const found = await create.find(made, secret);
        if (!found) {
          req.idempotency = { key, fingerprint, secret };
          return handler.call(this, req, reply);
        }
        if (found.by.idempotency?.fingerprint !== fingerprint) {
          throw new EdgemlError(ErrorCodes.HUB_IDEMPOTENCY_MISMATCH, `Idempotency-Key ${JSON.stringify(key)} was used for another request: use a new key for a new request`, {
            httpStatus: 422,
          });
        }
        // A retried upload: what it sends again is already stored.
        discardRestOfBody(req.raw);
        req.log.info({ method: req.method, url: path, by: caller }, 'create replayed for a retry with the same Idempotency-Key');
        return reply.code(create.status).header(REPLAYED_HEADER, 'true').send(found.body);
      });
    };
  });
}

/** Who is creating: the API key, and under an Idempotency-Key the mark that finds the record again. */
export function requestActor(req: FastifyRequest): ActorRecord {
  const actor = actorOf(requestKey(req));
  return req.idempotency ? { ...actor, idempotency: { key: req.idempotency.key, fingerprint: req.idempotency.fingerprint } } : actor;
}

/** The secret a create hands out: derived under an Idempotency-Key (a retry answers it again), else random. */
export function requestSecret(req: FastifyRequest): string {
  return req.idempotency?.secret ?? newSecret();
}
