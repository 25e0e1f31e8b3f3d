/**
 * The one place that turns errors into HTTP answers: `{ "error": { "code", "message" } }`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { discardRestOfBody } from '../../shared/discard-body.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';

/** fastify's own client errors (bad JSON, body too large, …) by status. */
const FASTIFY_STATUS_CODES: Record<number, ErrorCode> = {
  413: ErrorCodes.HUB_PAYLOAD_TOO_LARGE,
  415: ErrorCodes.HUB_UNSUPPORTED_MEDIA_TYPE,
};

function send(req: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string) {
  // An answer before the body was read (413, 401 on an upload) goes out while the rest is discarded.
  discardRestOfBody(req.raw);
  return reply.status(status).send({ error: { code, message } });
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((req, reply) => send(req, reply, 404, ErrorCodes.HUB_NOT_FOUND, `no route for ${req.method} ${req.url}`));
  app.setErrorHandler((err: FastifyError | EdgemlError, req, reply) => {
    if (!(err instanceof EdgemlError) && (err as NodeJS.ErrnoException).code === 'ECONNRESET' && !req.raw.complete) {
      // The client went away mid-request (a cut-off upload): nobody to answer, nothing wrong here.
      req.log.info({ method: req.method, url: req.url }, 'client closed the connection before the request was complete');
      return reply.status(499).send();
    }
    if (err instanceof EdgemlError) {
      const status = err.httpStatus ?? 500;
      if (status >= 500) req.log.error({ err }, 'request failed');
      return send(req, reply, status, err.code, err.message);
    }
    if (err.validation) {
      return send(req, reply, 400, ErrorCodes.HUB_INVALID_REQUEST, err.message);
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return send(req, reply, status, ErrorCodes.INTERNAL, 'internal error');
    }
    return send(req, reply, status, FASTIFY_STATUS_CODES[status] ?? ErrorCodes.HUB_INVALID_REQUEST, err.message);
  });
}
