/**
 * The one place that turns errors into HTTP answers: `{ "error": { "code", "message" } }`.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { discardRestOfBody } from '../../shared/discard-body.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';

/** fastify's own client errors (bad JSON, body too large, …) by status. */
const FASTIFY_STATUS_CODES: Record<number, ErrorCode> = {
  413: ErrorCodes.HUB_PAYLOAD_TOO_LARGE,
  415: ErrorCodes.HUB_UNSUPPORTED_MEDIA_TYPE,
};

function send(req: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string) {
  // An answer before the body was read (413, 401 on an upload) goes out while the rest is discarded;
  // except after a timeout: a client that stopped sending gets its answer and the connection closes.
  if (status === 408) void reply.header('connection', 'close');
  else discardRestOfBody(req.raw);
  return reply.status(status).send({ error: { code, message } });
}

/**
 * fastify's `frameworkErrors`: what its router refuses before any route (a path that does not
 * decode, a path parameter over 100 characters) gets the API's error shape too.
 */
export function answerFrameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  return send(req, reply, tooLong ? 414 : 400, ErrorCodes.HUB_INVALID_REQUEST, tooLong ? 'a path segment is longer than 100 characters' : 'the path is not a valid URL (bad percent-encoding?)');
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
    // fastify's own message for 415 is only "Unsupported Media Type": say which type, and what to send.
    const message = status === 415 ? `content-type ${JSON.stringify(req.headers['content-type'] ?? '(none)')} is not accepted here: send application/json` : err.message;
    return send(req, reply, status, FASTIFY_STATUS_CODES[status] ?? ErrorCodes.HUB_INVALID_REQUEST, message);
  });
}

/** What Node's HTTP parser refuses before any route runs, by its error code; anything else is 400. */
const PARSER_REFUSALS: Record<string, { status: number; code: ErrorCode; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: ErrorCodes.HUB_HEADERS_TOO_LARGE, message: 'the request headers are larger than 16 KiB' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: ErrorCodes.HUB_REQUEST_TIMEOUT, message: 'the request did not arrive in time' },
};

/**
 * fastify's `clientErrorHandler`: a request Node could not parse (a Content-Length that disagrees
 * with the body or with another one, headers too large) is answered in the same error shape as the
 * rest of the API, and the connection closed: what follows on it cannot be trusted to be a request.
 */
export function answerClientError(this: FastifyInstance, err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal = (err.code ? PARSER_REFUSALS[err.code] : undefined) ?? {
    status: 400,
    code: ErrorCodes.HUB_INVALID_REQUEST,
    // llhttp's reason is a fixed phrase ("Duplicate Content-Length"), never the request's bytes.
    message: `malformed HTTP request: ${err.reason ?? err.code ?? 'unreadable'}`,
  };
  this.log.debug({ code: err.code, reason: err.reason, status: refusal.status }, 'malformed request refused');
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
  const refuse = () => {
    if (!socket.writable) return void socket.destroy();
    socket.end(
      `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  };
  // Node's current response on the connection is internal, hence the cast.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!inFlight || inFlight.writableFinished) return refuse();
  // Bytes past a request that arrived whole are refused while it may still be served: its answer
  // goes out first, so the client learns what became of it.
  if (inFlight.req.complete) return void inFlight.once('finish', refuse).once('close', () => socket.destroy());
  // The request under way is the broken one (its body cut short): refused now, which also ends
  // the route reading it; or, with its answer already started, only cut.
  if (inFlight.headersSent) socket.destroy();
  else refuse();
}
