/**
 * The device's scoring gateway: `POST /v1/services/NAME/score` with the service's API key goes to
 * the container that serves NAME now (the route table), within the service's limits; the URL and
 * the key stay the same across revisions. `GET /v1/services`, with the key of any service the
 * device serves, lists what is served, with its counters, and `GET /v1/services/NAME/swagger.json`
 * is the container's document pointing at the gateway. Answers of a service with capture on are sampled at its rate, with their requests.
 * `POST /v1/services/NAME/feedback`, with the service's key, takes a label (feedback.ts).
 * Every scoring answer, the gateway's own refusals included, carries the request's `x-request-id`.
 *
 * A service's replicas share one queue (limiter.ts); a replica whose connection fails or whose
 * health check fails leaves the rotation at once (rotation.ts), and a request that never reached it
 * goes to another.
 *
 * With `tls` it is an HTTPS server that binds at once (its URL is known at start) and serves with
 * the device's certificate from the hub's CA; until the first one is installed, handshakes fail.
 * A renewed certificate replaces the TLS context: connections open and in flight keep going.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Pool, type Dispatcher } from 'undici';
import { formatHostPort, type HostPort } from '../../shared/address.js';
import type { Clock } from '../../shared/clock.js';
import { discardRestOfBody } from '../../shared/discard-body.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CaptureSample, CaptureSettings } from '../../shared/protocol.js';
import { secretMatches } from '../../shared/secrets.js';
import type { HealthProbe } from '../reconcile/health-probe.js';
import type { Replica, Route, RouteTable } from '../reconcile/routes.js';
import { readBody } from './body.js';
import { CAPTURE_KEEP_BYTES, capturedBody, sampled } from './capture.js';
import { CaptureTee } from './capture-tee.js';
import { ClientGone, GatewayCodes, GatewayError } from './errors.js';
import { FEEDBACK_MAX_BODY_BYTES, type FeedbackHandler } from './feedback.js';
import { bearer, sendJson } from './http-util.js';
import { DEFAULT_HEALTH_INTERVAL_MS, startHealthChecks } from './health-checks.js';
import { ServiceLimiter, type Admission, type Rotation } from './limiter.js';
import { GatewayMetrics, type MetricsSource, type Outcome } from './metrics.js';
import { accepts } from './port-check.js';
import { requestIdOf } from './request-id.js';
import { ReplicaRotation, type ReplicaDown } from './rotation.js';

export const GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** How long a request may wait for a slot before it gets 503. */
export const DEFAULT_QUEUE_TIMEOUT_MS = 30_000;
/** How long a client may take to send its body, from its headers on, before it gets 408. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
const UPSTREAM_TIMEOUT_MS = 120_000;
/** Replicas a request that never reached one tries after the first: more failing at once is an outage, not a replica down. */
const MAX_RETRIES = 3;
/** Errors of a connection that never carried the request: another replica may take it as it is. */
const NEVER_REACHED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** Takes samples without blocking or throwing (agent/telemetry/capture-buffer.ts). */
export interface CaptureSink {
  add(sample: CaptureSample): void;
}

export interface GatewayOptions {
  listen: HostPort;
  routes: RouteTable;
  /** Services the device should run: a desired service without a route yet is "not ready" (503), not unknown (404). */
  desired: () => string[];
  clock: Clock;
  logger: Logger;
  queueTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** How clients reach the gateway, when its bound address does not say (0.0.0.0, a proxy in front). */
  advertiseUrl?: string;
  /** Where sampled requests and answers go (data capture); without it nothing is sampled. */
  capture?: CaptureSink;
  /** Takes labels (`POST /v1/services/NAME/feedback`); without it that route is unknown (404). */
  feedback?: FeedbackHandler;
  /** Uniform in [0, 1), for sampling; default Math.random. */
  random?: () => number;
  /** Told once per replica that leaves the rotation (connection failed, health check failed), so it is replaced. */
  onReplicaDown?: ReplicaDown;
  /** Probes each replica in rotation every `healthIntervalMs`; without it there are no active health checks. */
  health?: HealthProbe;
  healthIntervalMs?: number;
  /** HTTPS, with this certificate, or with none yet (set later with `setCertificate`). Without it: plain HTTP. */
  tls?: { certificate: ServingCertificate | null };
}

/** PEM key and certificate (chain) the gateway serves with. */
export interface ServingCertificate {
  key: string;
  cert: string;
}

/** A service's load now, for the autoscaler. */
export interface ServiceLoad {
  inFlight: number;
  queued: number;
  /** Replicas in rotation: listed by the route and not ejected. */
  ready: number;
}

export interface Gateway {
  /** How clients reach it: the advertised URL, or the bound address, e.g. `http://127.0.0.1:8090`. */
  readonly url: string;
  /** Per-service counters for telemetry. */
  readonly metrics: MetricsSource;
  /** A service's requests in flight and waiting, and its replicas in rotation, now (the autoscaler's input). */
  load(service: string): ServiceLoad;
  /** Serves new handshakes with this certificate (HTTPS only); connections already open are not touched. */
  setCertificate(certificate: ServingCertificate): void;
  close(): Promise<void>;
}

const ABORTED: Outcome = { kind: 'aborted' };

type Granted = Extract<Admission, { ok: true }>;

/** How a request forwarded to a container ended, and which container's route it went to last. */
interface Forwarded {
  outcome: Outcome;
  target: Route;
}

/** A request picked for capture: its answer's body is teed on the way to the client. */
interface Sampling {
  sink: CaptureSink;
  settings: CaptureSettings;
  tee: CaptureTee;
}

function upstreamFailed(service: string, what: string, cause?: unknown): GatewayError {
  return new GatewayError(502, GatewayCodes.UPSTREAM, `service ${service} ${what}`, {}, { cause });
}

function neverReached(err: unknown): boolean {
  const codes = [(err as { code?: unknown }).code, ((err as { cause?: { code?: unknown } }).cause ?? {}).code];
  return codes.some((c) => typeof c === 'string' && NEVER_REACHED.has(c));
}

/** The per-replica arithmetic, as 429s and 503s say it. */
function capacity({ limits, replicas }: Rotation): string {
  const n = replicas.length;
  return `${n} ${n === 1 ? 'replica' : 'replicas'} × ${limits.maxConcurrent} in flight`;
}

export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const limiters = new Map<string, ServiceLimiter>();
  const pools = new Map<number, Pool>();
  const queueTimeoutMs = o.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS;
  const random = o.random ?? Math.random;
  const bodyLimits = { maxBytes: GATEWAY_MAX_BODY_BYTES, timeoutMs: o.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS };
  const rotation = new ReplicaRotation(o.routes, o.logger, o.onReplicaDown);
  const load = (service: string): ServiceLoad => ({
    inFlight: limiters.get(service)?.inFlight ?? 0,
    queued: limiters.get(service)?.queued ?? 0,
    ready: rotation.of(service).replicas.length,
  });
  const metrics = new GatewayMetrics(o.clock, (service) => {
    const { inFlight, queued, ready } = load(service);
    return { inFlight, queued, replicas: ready };
  });
  let url = '';

  const poolFor = (port: number): Pool => {
    const known = pools.get(port);
    if (known) return known;
    // An idle connection is given up 2 s before the container's keep-alive timeout (undici's
    // default margin is 1 s): on a busy device a late event loop would otherwise send a request on
    // a connection the container is closing, and that request fails (it may have been read).
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64, headersTimeout: UPSTREAM_TIMEOUT_MS, bodyTimeout: UPSTREAM_TIMEOUT_MS });
    pools.set(port, pool);
    // A new port means a route switched: pools of containers that are gone are closed now, not
    // checked on every request (the hot path).
    const live = new Set(o.routes.list().flatMap((r) => r.replicas.map((x) => x.port)));
    for (const [p, old] of pools) {
      if (p !== port && !live.has(p)) {
        pools.delete(p);
        void old.close();
      }
    }
    return pool;
  };

  const limiterOf = (name: string): ServiceLimiter => {
    let limiter = limiters.get(name);
    if (!limiter) limiters.set(name, (limiter = new ServiceLimiter(o.clock, () => rotation.of(name))));
    return limiter;
  };

  /** The one key check: scoring a service and listing the device's services both go through it. */
  const keyFits = (route: Route, key: string): boolean =>
    secretMatches(route.keyHash, key) || (route.previousKeys ?? []).some((p) => Date.parse(p.until) > o.clock.now() && secretMatches(p.keyHash, key));

  const known = (name: string): boolean => o.routes.get(name) !== undefined || o.desired().includes(name);

  const noService = (name: string) => new GatewayError(404, GatewayCodes.NOT_FOUND, `no service ${name} on this device`);

  const routeOf = (name: string): Route => {
    const route = o.routes.get(name);
    if (route) return route;
    if (known(name)) throw new GatewayError(503, GatewayCodes.NOT_READY, `service ${name} is starting on this device`, { 'retry-after': '1' });
    throw noService(name);
  };

  /**
   * Answers with the gateway's error, and drains what the client has not sent yet (within bounds),
   * so a client still writing its body reads this answer instead of a reset.
   */
  const answerError = (req: IncomingMessage, res: ServerResponse, err: unknown): GatewayError => {
    let failure: GatewayError;
    if (err instanceof GatewayError) {
      failure = err;
    } else {
      o.logger.error({ err, path: req.url }, 'gateway request failed');
      failure = new GatewayError(500, GatewayCodes.INTERNAL, 'internal error');
    }
    discardRestOfBody(req);
    if (!res.headersSent) sendJson(res, failure.status, { error: { code: failure.code, message: failure.message } }, failure.headers);
    return failure;
  };

  /** The service's route, if the request carries its key (or one still in its grace period). */
  const authorized = (name: string, req: IncomingMessage): Route => {
    const route = routeOf(name);
    if (!keyFits(route, bearer(req))) {
      throw new GatewayError(401, GatewayCodes.UNAUTHENTICATED, `service ${name} needs its API key: send "Authorization: Bearer KEY"`, { 'www-authenticate': 'Bearer' });
    }
    return route;
  };

  const queueTimedOut = (name: string) =>
    new GatewayError(503, GatewayCodes.QUEUE_TIMEOUT, `service ${name}: no slot within ${queueTimeoutMs / 1000} s (${capacity(rotation.of(name))})`, { 'retry-after': '1' });

  /**
   * Sends the request to the replica it was admitted to; if the connection fails and the replica's
   * port is closed, that replica leaves the rotation. A request that never reached it (or that was
   * sent to a replica the route had already dropped: a blue/green switch) waits at the head of the
   * queue for another; one that may have reached it fails (502) rather than being scored twice.
   * `route` is the service's route as the request arrived; `headers` go to the container; `tee`, for
   * a sampled request, sees the answer's body on its way to the client.
   */
  const forward = async (route: Route, admitted: Granted, body: Buffer, headers: Record<string, string>, res: ServerResponse, gone: AbortSignal, tee?: CaptureTee): Promise<Forwarded> => {
    const name = route.service;
    let admission = admitted;
    try {
      for (let attempt = 0; ; attempt++) {
        const { replica } = admission;
        // The route now: it may have switched (or its capture changed) while the request waited.
        const target = o.routes.get(name) ?? route;
        let upstream: Dispatcher.ResponseData;
        try {
          upstream = await poolFor(replica.port).request({ path: '/score', method: 'POST', body, headers, signal: gone });
        } catch (err) {
          if (gone.aborted) return { outcome: ABORTED, target };
          const unreached = neverReached(err);
          // A failed connection is the replica's end only if its port is closed too: a reset of one
          // connection, or the agent short of sockets, leaves a healthy replica in rotation.
          if (rotation.listed(name, replica.container) && !(await accepts(replica.port))) rotation.eject(name, replica, `connection failed: ${(err as Error).message}`);
          // A replica the route dropped in a switch or a scale-down drains what it took: a failure
          // there is an idle connection it closed. One that failed may have scored the request:
          // scoring twice is worse than a 502.
          const drained = !rotation.listed(name, replica.container) && !rotation.failed(replica.container);
          const retry = attempt < MAX_RETRIES && (unreached || drained) && rotation.of(name).replicas.length > 0;
          if (!retry) throw upstreamFailed(name, `did not answer: ${(err as Error).message}`, err);
          admission.release();
          const next = await limiterOf(name).acquire(queueTimeoutMs, { signal: gone, retry: true });
          if (!next.ok) {
            if (next.reason === 'aborted') return { outcome: ABORTED, target };
            throw queueTimedOut(name);
          }
          admission = next;
          continue;
        }
        res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') });
        try {
          // At the client's pace: a slow reader holds the container back instead of filling memory here.
          await (tee ? pipeline(upstream.body, tee, res) : pipeline(upstream.body, res));
          return { outcome: { kind: 'answered', status: upstream.statusCode }, target };
        } catch (err) {
          // pipeline has destroyed both sides: the client sees a cut response, the container a closed connection.
          if (gone.aborted) return { outcome: ABORTED, target };
          o.logger.warn({ err, service: name, container: replica.container, port: replica.port }, 'the container broke off its answer');
          return { outcome: { kind: 'cut-off' }, target };
        }
      }
    } finally {
      admission.release();
    }
  };

  /**
   * A sample of an answered request into capture. Capture must never get in the way of scoring: the
   * bodies are parsed and redacted after the request has been counted (its latency taken first),
   * and a failure is logged (without the bodies) and the sample dropped.
   */
  const record = ({ sink, settings, tee }: Sampling, arrived: number, requestId: string, body: Buffer, { outcome, target }: Forwarded): void => {
    // Only what the container answered; a status outside the protocol's range would spoil a whole batch.
    if (outcome.kind !== 'answered' || outcome.status > 599) return;
    // A clock stepped back (NTP) must not make a latency negative.
    const latencyMs = Math.max(0, o.clock.now() - arrived);
    setImmediate(() => {
      try {
        sink.add({
          ts: new Date(arrived).toISOString(),
          requestId,
          service: target.service,
          revision: target.revision,
          models: target.models.map(({ name, version }) => ({ name, version })),
          status: outcome.status,
          latencyMs,
          request: capturedBody({ kept: body.subarray(0, CAPTURE_KEEP_BYTES), bytes: body.length }, settings),
          response: capturedBody(tee.body(), settings),
        });
      } catch (err) {
        o.logger.error({ err, service: target.service }, 'a capture sample was dropped');
      }
    });
  };

  /** Cheap refusals first (key, a full queue), so they cost no upload; the body then, and only then a slot. */
  const serve = async (name: string, requestId: string, req: IncomingMessage, res: ServerResponse, gone: AbortSignal): Promise<Outcome> => {
    const arrived = o.clock.now();
    const route = authorized(name, req);
    if (rotation.of(name).replicas.length === 0) {
      throw new GatewayError(503, GatewayCodes.NOT_READY, `service ${name} has no replica ready on this device`, { 'retry-after': '1' });
    }
    const limiter = limiterOf(name);
    const queueFull = () => {
      const now = rotation.of(name);
      return new GatewayError(429, GatewayCodes.QUEUE_FULL, `service ${name} is busy: ${capacity(now)} and ${now.replicas.length} × ${now.limits.maxQueue} waiting`, { 'retry-after': '1' });
    };
    if (limiter.full()) throw queueFull();
    const body = await readBody(req, bodyLimits, o.clock);
    const admission = await limiter.acquire(queueTimeoutMs, { signal: gone });
    if (!admission.ok) {
      if (admission.reason === 'queue-full') throw queueFull();
      if (admission.reason === 'queue-timeout') throw queueTimedOut(name);
      return ABORTED;
    }
    let sampling: Sampling | undefined;
    try {
      // Capture as the route says now: it may have changed while the request waited.
      const capture = (o.routes.get(name) ?? route).capture;
      sampling = o.capture && sampled(capture, random) ? { sink: o.capture, settings: capture, tee: new CaptureTee(CAPTURE_KEEP_BYTES) } : undefined;
    } catch (err) {
      // From here on `forward` releases the slot; until then, this.
      admission.release();
      throw err;
    }
    const headers = { 'content-type': String(req.headers['content-type'] ?? 'application/json'), 'x-request-id': requestId };
    const forwarded = await forward(route, admission, body, headers, res, gone, sampling?.tee);
    if (sampling) record(sampling, arrived, requestId, body, forwarded);
    return forwarded.outcome;
  };

  const score = async (name: string, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = requestIdOf(req);
    // Set on the response itself, so the gateway's own answers and the container's passed on carry it alike.
    res.setHeader('x-request-id', requestId);
    // Not counted: any name can be made up, and each would be a new series.
    if (!known(name)) {
      answerError(req, res, noService(name));
      return;
    }
    const exchange = metrics.start(name);
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const outcome = await serve(name, requestId, req, res, gone.signal).catch((err: unknown): Outcome => {
      if (gone.signal.aborted || err instanceof ClientGone) return ABORTED;
      const { status, code } = answerError(req, res, err);
      return { kind: 'gateway-error', status, code };
    });
    exchange.finish(outcome);
  };

  /**
   * The key is checked before the body is read (a refusal costs no upload), and the route and the
   * replica are taken together after it: a revision switch meanwhile must not file the label under
   * one revision and check it against another's schema.
   */
  const feedback = async (take: FeedbackHandler, name: string, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    authorized(name, req);
    const body = await readBody(req, { ...bodyLimits, maxBytes: FEEDBACK_MAX_BODY_BYTES }, o.clock);
    const route = authorized(name, req);
    sendJson(res, 202, await take({ route, replica: rotation.of(name).replicas[0], body }));
  };

  const swagger = async (name: string, res: ServerResponse): Promise<void> => {
    const route = routeOf(name);
    const replica: Replica = rotation.of(name).replicas[0] ?? route.replicas[0]!;
    const upstream = await poolFor(replica.port)
      .request({ path: '/swagger.json', method: 'GET' })
      .catch((err: unknown) => Promise.reject(upstreamFailed(name, `did not answer for /swagger.json: ${(err as Error).message}`, err)));
    if (upstream.statusCode !== 200) {
      await upstream.body.dump();
      throw upstreamFailed(name, `answered ${upstream.statusCode} for /swagger.json`);
    }
    const doc = (await upstream.body.json().catch((err: unknown) => Promise.reject(upstreamFailed(name, `sent a /swagger.json that is not JSON`, err)))) as Record<string, unknown>;
    sendJson(res, 200, { ...doc, servers: [{ url: `${url}/v1/services/${name}` }] });
  };

  /** The replicas in rotation, with the requests in flight on each (by container id). */
  const replicasOf = (service: string): { ready: number; inFlight: Record<string, number> } => {
    const { replicas } = rotation.of(service);
    const limiter = limiters.get(service);
    return { ready: replicas.length, inFlight: Object.fromEntries(replicas.map((r) => [r.container, limiter?.inFlightOn(r.container) ?? 0])) };
  };

  /** Names, digests and counters are the device's business: any key of a service it serves may see them. */
  const services = (req: IncomingMessage, res: ServerResponse): void => {
    const key = bearer(req);
    if (!o.routes.list().some((r) => keyFits(r, key))) {
      throw new GatewayError(401, GatewayCodes.UNAUTHENTICATED, 'listing services needs the API key of a service on this device: send "Authorization: Bearer KEY"', { 'www-authenticate': 'Bearer' });
    }
    sendJson(res, 200, {
      services: o.routes.list().map((r) => ({
        name: r.service,
        revision: r.revision,
        image: r.image,
        models: r.models,
        limits: { maxConcurrent: r.limits.maxConcurrent, maxQueue: r.limits.maxQueue },
        inFlight: limiters.get(r.service)?.inFlight ?? 0,
        queued: limiters.get(r.service)?.queued ?? 0,
        replicas: replicasOf(r.service),
        metrics: metrics.totals(r.service),
      })),
    });
  };

  const listener: RequestListener = (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const m = /^\/v1\/services\/([a-z0-9][a-z0-9-]{0,62})\/(score|swagger\.json|feedback)$/.exec(path);
    if (m && m[2] === 'score' && req.method === 'POST') return void score(m[1]!, req, res);
    const handle = async () => {
      if (path === '/v1/services' && req.method === 'GET') return services(req, res);
      if (m && m[2] === 'swagger.json' && req.method === 'GET') return swagger(m[1]!, res);
      if (m && m[2] === 'feedback' && req.method === 'POST' && o.feedback) return feedback(o.feedback, m[1]!, req, res);
      throw new GatewayError(404, GatewayCodes.NOT_FOUND, `no route for ${req.method} ${path}`);
    };
    handle().catch((err: unknown) => err instanceof ClientGone || answerError(req, res, err));
  };
  const https: HttpsServer | undefined = o.tls ? createHttpsServer(o.tls.certificate ?? {}, listener) : undefined;
  const server: Server = https ?? createServer(listener);
  // A client that does not trust the CA, or speaks plain HTTP to this port: its own failure, not ours.
  https?.on('tlsClientError', (err) => o.logger.debug({ err: err.message }, 'a TLS handshake failed'));
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
  const boundUrl = `${https ? 'https' : 'http'}://${formatHostPort({ host: bound.address, port: bound.port })}`;
  url = o.advertiseUrl ?? boundUrl;
  o.logger.info({ url: boundUrl, advertised: url }, 'gateway listening');
  if (o.tls && !o.tls.certificate) o.logger.info('waiting for the gateway certificate');
  const health = o.health
    ? startHealthChecks({
        routes: o.routes,
        rotation,
        probe: o.health,
        clock: o.clock,
        intervalMs: o.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS,
        logger: o.logger,
        // A replica that joined takes waiting requests at once only when a request arrives or ends; on a quiet service, at the next round.
        afterRound: () => {
          for (const limiter of limiters.values()) limiter.pump();
        },
      })
    : undefined;

  return {
    url,
    metrics,
    load,
    setCertificate: (certificate) => {
      if (!https) throw new Error('setCertificate on a plain HTTP gateway');
      https.setSecureContext(certificate);
    },
    close: async () => {
      health?.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}
