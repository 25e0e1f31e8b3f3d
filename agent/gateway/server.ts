/**
 * The device's scoring gateway: `POST /v1/services/NAME/score` with the service's API key goes to
 * the container that serves NAME now (the route table), within the service's limits; the URL and
 * the key stay the same across revisions. `GET /v1/services` lists what is served, and
 * `GET /v1/services/NAME/swagger.json` is the container's document pointing at the gateway.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { formatHostPort, type HostPort } from '../../shared/address.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { secretMatches } from '../../shared/secrets.js';
import type { Route, RouteTable } from '../reconcile/routes.js';
import { ServiceLimiter } from './limiter.js';

export const GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** How long a request may wait for a slot before it gets 503. */
export const DEFAULT_QUEUE_TIMEOUT_MS = 30_000;
const UPSTREAM_TIMEOUT_MS = 120_000;

export interface GatewayOptions {
  listen: HostPort;
  routes: RouteTable;
  /** Services the device should run: a desired service without a route yet is "not ready" (503), not unknown (404). */
  desired: () => string[];
  clock: Clock;
  logger: Logger;
  queueTimeoutMs?: number;
}

export interface Gateway {
  /** e.g. `http://127.0.0.1:8090` */
  readonly url: string;
  close(): Promise<void>;
}

class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > GATEWAY_MAX_BODY_BYTES) throw new GatewayError(413, 'GATEWAY_E_TOO_LARGE', `the body is over ${GATEWAY_MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > GATEWAY_MAX_BODY_BYTES) throw new GatewayError(413, 'GATEWAY_E_TOO_LARGE', `the body is over ${GATEWAY_MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function bearer(req: IncomingMessage): string {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
}

export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const limiters = new Map<string, ServiceLimiter>();
  const pools = new Map<number, Pool>();
  const queueTimeoutMs = o.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS;
  let url = '';

  const poolFor = (port: number): Pool => {
    let pool = pools.get(port);
    if (!pool) {
      pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64, headersTimeout: UPSTREAM_TIMEOUT_MS, bodyTimeout: UPSTREAM_TIMEOUT_MS });
      pools.set(port, pool);
    }
    // Ports of containers that are gone are closed here, on the way.
    const live = new Set(o.routes.list().map((r) => r.port));
    for (const [p, old] of pools) {
      if (p !== port && !live.has(p)) {
        pools.delete(p);
        void old.close();
      }
    }
    return pool;
  };

  const routeOf = (name: string): Route => {
    const route = o.routes.get(name);
    if (route) return route;
    if (o.desired().includes(name)) throw new GatewayError(503, 'GATEWAY_E_NOT_READY', `service ${name} is starting on this device`, { 'retry-after': '1' });
    throw new GatewayError(404, 'GATEWAY_E_NOT_FOUND', `no service ${name} on this device`);
  };

  const forward = async (route: Route, body: Buffer, contentType: string, res: ServerResponse): Promise<void> => {
    let target = route;
    for (let attempt = 0; ; attempt++) {
      try {
        const upstream = await poolFor(target.port).request({ path: '/score', method: 'POST', body, headers: { 'content-type': contentType } });
        res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') });
        for await (const chunk of upstream.body) res.write(chunk);
        res.end();
        return;
      } catch (err) {
        // The route switched under this request (the old container stopped): once more, to the new one.
        const now = o.routes.get(route.service);
        if (attempt === 0 && now && now.port !== target.port && !res.headersSent) {
          target = now;
          continue;
        }
        if (res.headersSent) {
          res.destroy(err as Error);
          return;
        }
        throw new GatewayError(502, 'GATEWAY_E_UPSTREAM', `service ${route.service} did not answer: ${(err as Error).message}`);
      }
    }
  };

  const score = async (name: string, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const route = routeOf(name);
    // Read (bounded) before the key check, so a refusal reaches a client that is still sending.
    const body = await readBody(req);
    if (!secretMatches(route.keyHash, bearer(req))) {
      throw new GatewayError(401, 'GATEWAY_E_UNAUTHENTICATED', `service ${name} needs its API key: send "Authorization: Bearer KEY"`, { 'www-authenticate': 'Bearer' });
    }
    let limiter = limiters.get(name);
    if (!limiter) limiters.set(name, (limiter = new ServiceLimiter(o.clock)));
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const admission = await limiter.acquire(route.limits, queueTimeoutMs, gone.signal);
    if (!admission.ok) {
      if (admission.reason === 'queue-full') throw new GatewayError(429, 'GATEWAY_E_QUEUE_FULL', `service ${name} is busy: ${route.limits.maxConcurrent} in flight and ${route.limits.maxQueue} waiting`, { 'retry-after': '1' });
      if (admission.reason === 'queue-timeout') throw new GatewayError(503, 'GATEWAY_E_QUEUE_TIMEOUT', `service ${name}: no slot within ${queueTimeoutMs / 1000} s`, { 'retry-after': '1' });
      return;
    }
    try {
      // The route again: it may have switched while the request waited.
      await forward(o.routes.get(name) ?? route, body, String(req.headers['content-type'] ?? 'application/json'), res);
    } finally {
      admission.release();
    }
  };

  const swagger = async (name: string, res: ServerResponse): Promise<void> => {
    const route = routeOf(name);
    const upstream = await poolFor(route.port).request({ path: '/swagger.json', method: 'GET' });
    if (upstream.statusCode !== 200) throw new GatewayError(502, 'GATEWAY_E_UPSTREAM', `service ${name} answered ${upstream.statusCode} for /swagger.json`);
    const doc = (await upstream.body.json()) as Record<string, unknown>;
    sendJson(res, 200, { ...doc, servers: [{ url: `${url}/v1/services/${name}` }] });
  };

  const services = (res: ServerResponse): void => {
    sendJson(res, 200, {
      services: o.routes.list().map((r) => ({
        name: r.service,
        revision: r.revision,
        image: r.image,
        models: r.models,
        limits: { maxConcurrent: r.limits.maxConcurrent, maxQueue: r.limits.maxQueue },
        inFlight: limiters.get(r.service)?.inFlight ?? 0,
        queued: limiters.get(r.service)?.queued ?? 0,
      })),
    });
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const m = /^\/v1\/services\/([a-z0-9][a-z0-9-]{0,62})\/(score|swagger\.json)$/.exec(path);
    const handle = async () => {
      if (path === '/v1/services' && req.method === 'GET') return services(res);
      if (m && m[2] === 'score' && req.method === 'POST') return score(m[1]!, req, res);
      if (m && m[2] === 'swagger.json' && req.method === 'GET') return swagger(m[1]!, res);
      throw new GatewayError(404, 'GATEWAY_E_NOT_FOUND', `no route for ${req.method} ${path}`);
    };
    handle().catch((err: unknown) => {
      if (res.headersSent) return;
      if (err instanceof GatewayError) {
        // Unread body (an early 401 or 413): the connection closes rather than read it all.
        if (!req.complete) res.setHeader('connection', 'close');
        sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
        return;
      }
      o.logger.error({ err, path }, 'gateway request failed');
      sendJson(res, 500, { error: { code: 'GATEWAY_E_INTERNAL', message: 'internal error' } });
    });
  });
  server.keepAliveTimeout = 5000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.listen.port, o.listen.host, () => resolve());
    });
  } catch (err) {
    throw new EdgemlError(ErrorCodes.AGENT_LISTEN_FAILED, `the scoring gateway cannot listen on ${formatHostPort(o.listen)}: ${(err as Error).message} (set --gateway)`, { cause: err });
  }
  const bound = server.address() as AddressInfo;
  url = `http://${formatHostPort({ host: bound.address, port: bound.port })}`;
  o.logger.info({ url }, 'gateway listening');

  return {
    url,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}
