/**
 * The one place that turns errors into HTTP answers: `{ "error": { "code", "message" } }`.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: ErrorCodes.HUB_NOT_FOUND, message: `no route for ${req.method} ${req.url}` } });
  });
  app.setErrorHandler((err: FastifyError | EdgemlError, req, reply) => {
    if (err instanceof EdgemlError) {
      const status = err.httpStatus ?? 500;
      if (status >= 500) req.log.error({ err }, 'request failed');
      return reply.status(status).send({ error: { code: err.code, message: err.message } });
    }
    if (err.validation) {
      return reply.status(400).send({ error: { code: ErrorCodes.HUB_INVALID_REQUEST, message: err.message } });
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.status(status).send({ error: { code: ErrorCodes.INTERNAL, message: 'internal error' } });
    }
    // fastify's own 4xx (bad JSON, body too large, …) keep their status under one code family.
    return reply.status(status).send({ error: { code: ErrorCodes.HUB_INVALID_REQUEST, message: err.message } });
  });
}
