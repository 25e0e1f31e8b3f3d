/**
 * The one place that turns errors into HTTP answers: `{ "error": { "code", "message" } }`.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { EdgemlError } from '../../shared/errors.js';

/** An error that only exists at the HTTP edge (routing, lookups). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  static notFound(code: string, message: string): HttpError {
    return new HttpError(404, code, message);
  }
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'HUB_E_NOT_FOUND', message: `no route for ${req.method} ${req.url}` } });
  });
  app.setErrorHandler((err: FastifyError | EdgemlError | HttpError, req, reply) => {
    if (err instanceof HttpError) {
      return reply.status(err.status).send({ error: { code: err.code, message: err.message } });
    }
    if (err instanceof EdgemlError) {
      const status = err.httpStatus ?? 500;
      if (status >= 500) req.log.error({ err }, 'request failed');
      return reply.status(status).send({ error: { code: err.code, message: err.message } });
    }
    if ('validation' in err && err.validation) {
      return reply.status(400).send({ error: { code: 'HUB_E_INVALID_REQUEST', message: err.message } });
    }
    const status = 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.status(status).send({ error: { code: 'HUB_E_INTERNAL', message: 'internal error' } });
    }
    return reply.status(status).send({ error: { code: err.code ?? 'HUB_E_BAD_REQUEST', message: err.message } });
  });
}
