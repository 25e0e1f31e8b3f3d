/**
 * The scoring gateway (agent/gateway/server.ts) over real HTTP on 127.0.0.1, with node servers in
 * the containers' place: what is refused before the body is read, what a client that goes away or a
 * container that breaks off does to the slot, backpressure, the counters, and balancing over replicas
 * (one queue, a replica that fails leaves the rotation).
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { GATEWAY_MAX_BODY_BYTES, startGateway, type Gateway, type ServingCertificate } from '../../agent/gateway/server.js';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createCsr } from '../../agent/pki/csr.js';
import { gatewayNames } from '../../agent/pki/names.js';
import { generateKeyPair, privateKeyPem } from '../../shared/pki/x509.js';
import { makeTestCa, servedSerial, signCsr, type TestCa } from '../helpers/gateway-tls.js';
import { LATENCY_BOUNDS_MS } from '../../agent/gateway/metrics.js';
import type { HealthAnswer, HealthProbe } from '../../agent/reconcile/health-probe.js';
import { RouteTable, type Replica } from '../../agent/reconcile/routes.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import type { DesiredService } from '../../shared/protocol.js';
import { hashSecret } from '../../shared/secrets.js';
import { assertStalls, writeBulk } from '../helpers/bulk-answer.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { waitFor } from '../helpers/wait.js';

const KEY = 'the-service-key';
const SCORE = '/v1/services/iris/score';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Upstream {
  port: number;
  /** Requests the container received, by arrival. */
  received: IncomingMessage[];
  /** The container dies: its connections are cut and its port closed. */
  kill: () => void;
}

async function startUpstream(t: ExecutionContext, handle: Handler): Promise<Upstream> {
  const received: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    received.push(req);
    handle(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const kill = () => {
    server.closeAllConnections();
    server.close();
  };
  t.teardown(kill);
  return { port: (server.address() as AddressInfo).port, received, kill };
}

/** A container that answers what it was sent: its size and content type. */
const echo: Handler = (req, res) => {
  let size = 0;
  req.on('data', (chunk: Buffer) => (size += chunk.length));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ size, contentType: req.headers['content-type'] }));
  });
};

/** A container that holds every request until the test lets it go. */
function holding(): { handle: Handler; release: () => void; held: () => number } {
  const waiting: ServerResponse[] = [];
  let released = false;
  return {
    handle: (req, res) => {
      req.resume();
      if (released) res.end('{}');
      else waiting.push(res);
    },
    release: () => {
      released = true;
      for (const res of waiting.splice(0)) res.end('{}');
    },
    held: () => waiting.length,
  };
}

/** A container that holds each request, with its body, until the test lets the oldest go. */
function holdingEach(): { handle: Handler; releaseOne: () => void; bodies: string[]; held: () => number } {
  const waiting: ServerResponse[] = [];
  const bodies: string[] = [];
  return {
    handle: (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        bodies.push(body);
        waiting.push(res);
      });
    },
    releaseOne: () => waiting.shift()?.end('{}'),
    bodies,
    held: () => waiting.length,
  };
}

/** A port nothing listens on: a container that is gone. */
async function deadPort(): Promise<number> {
  const gone = createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const port = (gone.address() as AddressInfo).port;
  await new Promise((resolve) => gone.close(resolve));
  return port;
}

const replicaAt = (port: number): Replica => ({ container: `c${port}`, port });

function service(limits: { maxConcurrent: number; maxQueue: number }): DesiredService {
  return { name: 'iris', revision: 1, image: `reg/iris@sha256:${'0'.repeat(64)}`, limits: { ...limits, memoryBytes: null, cpus: null }, keyHash: hashSecret(KEY), models: [] };
}

interface TestGateway {
  gateway: Gateway;
  routes: RouteTable;
  /** The gateway's log lines, parsed. */
  logs: Array<{ level: number; msg: string }>;
  /** The test's own HTTP client, closed before the gateway. */
  client: Agent;
}

interface TestGatewayOptions {
  limits?: { maxConcurrent: number; maxQueue: number };
  desired?: string[];
  queueTimeoutMs?: number;
  bodyTimeoutMs?: number;
  advertiseUrl?: string;
  clock?: Clock;
  health?: HealthProbe;
  healthIntervalMs?: number;
  /** Replicas the gateway reported down, in order. */
  down?: Array<{ service: string; replica: Replica; reason: string }>;
  /** As the reconciler's replicaFailed does: a replica reported down leaves the route at once. */
  dropDown?: boolean;
  tls?: { certificate: ServingCertificate | null };
}

/** A gateway with one route, for `iris`, to the upstreams on `upstreamPorts` (one replica each, in that order). */
async function startTestGateway(t: ExecutionContext, upstreamPorts: number | number[], opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const routes = new RouteTable();
  routes.set(service(opts.limits ?? { maxConcurrent: 4, maxQueue: 4 }), [upstreamPorts].flat().map(replicaAt));
  const logs: TestGateway['logs'] = [];
  const gateway = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    routes,
    desired: () => ['iris', ...(opts.desired ?? [])],
    clock: opts.clock ?? systemClock,
    health: opts.health,
    healthIntervalMs: opts.healthIntervalMs,
    onReplicaDown: (name, replica, reason) => {
      opts.down?.push({ service: name, replica, reason });
      const route = routes.get(name);
      if (opts.dropDown && route) routes.set(service(route.limits), route.replicas.filter((r) => r.container !== replica.container));
    },
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as TestGateway['logs'][number]) }),
    queueTimeoutMs: opts.queueTimeoutMs,
    bodyTimeoutMs: opts.bodyTimeoutMs,
    advertiseUrl: opts.advertiseUrl,
    tls: opts.tls,
  });
  t.teardown(() => gateway.close());
  // A client that goes away can leave undici with a connection it opened but never used, which the
  // gateway cannot tell from a slow client: the test closes its own.
  const client = new Agent();
  t.teardown(() => client.destroy());
  return { gateway, routes, logs, client };
}

async function post(g: TestGateway, body: string, opts: { key?: string; path?: string; signal?: AbortSignal; headers?: Record<string, string> } = {}) {
  const res = await request(`${g.gateway.url}${opts.path ?? SCORE}`, {
    dispatcher: g.client,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.key === undefined ? {} : { authorization: `Bearer ${opts.key}` }), ...opts.headers },
    body,
    signal: opts.signal,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text ? (JSON.parse(text) as any) : undefined };
}

/** A raw HTTP/1.1 connection: sends what it is told when it is told, and keeps what it reads. */
class RawClient {
  readonly chunks: Buffer[] = [];
  error: Error | undefined;
  readonly closed: Promise<unknown>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.chunks.push(d));
    socket.on('error', (err) => (this.error = err));
    this.closed = new Promise((resolve) => socket.once('close', resolve));
  }

  static async open(t: ExecutionContext, gateway: Gateway): Promise<RawClient> {
    const { hostname, port } = new URL(gateway.url);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    // Before the gateway's own teardown, which waits for its connections.
    t.teardown(() => void socket.destroy());
    return new RawClient(socket);
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  get bytes(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  /** The status lines read so far. */
  statuses(): number[] {
    return [...this.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  }

  /** Writes, waiting for the socket to drain as a well-behaved uploader does. */
  async write(data: string | Buffer): Promise<void> {
    if (!this.socket.write(data)) await Promise.race([new Promise((resolve) => this.socket.once('drain', resolve)), this.closed]);
  }

  /** Sends `total` bytes of body in `chunk`-sized pieces, `pauseMs` apart. */
  async trickle(total: number, chunk: number, pauseMs: number): Promise<void> {
    for (let sent = 0; sent < total && !this.socket.destroyed; sent += chunk) {
      await this.write(Buffer.alloc(Math.min(chunk, total - sent), 0x20));
      await sleep(pauseMs);
    }
  }
}

function head(opts: { key?: string; length?: number; chunked?: boolean }): string {
  return (
    `POST ${SCORE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    (opts.key ? `Authorization: Bearer ${opts.key}\r\n` : '') +
    (opts.chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${opts.length ?? 0}\r\n`) +
    '\r\n'
  );
}

const counters = (gateway: Gateway) => gateway.metrics.snapshot().services.iris!;

test('scores through the route, passes the answer on, and lists the service with its counters', async (t) => {
  const upstream = await startUpstream(t, echo);
  const g = await startTestGateway(t, upstream.port, { desired: ['wine'] });
  const { gateway } = g;
  const ok = await post(g, '{"x":1}', { key: KEY });
  t.is(ok.status, 200);
  t.deepEqual(ok.body, { size: 7, contentType: 'application/json' });

  const unknown = await post(g, '{}', { key: KEY, path: '/v1/services/nope/score' });
  t.is(unknown.status, 404);
  t.is(unknown.body.error.code, 'GATEWAY_E_NOT_FOUND');
  const starting = await post(g, '{}', { key: KEY, path: '/v1/services/wine/score' });
  t.is(starting.status, 503);
  t.is(starting.body.error.code, 'GATEWAY_E_NOT_READY');
  t.is(starting.headers['retry-after'], '1');

  const listed = (await (await request(`${gateway.url}/v1/services`, { dispatcher: g.client, headers: { authorization: `Bearer ${KEY}` } })).body.json()) as { services: any[] };
  t.is(listed.services.length, 1);
  t.like(listed.services[0], { name: 'iris', revision: 1, limits: { maxConcurrent: 4, maxQueue: 4 }, inFlight: 0, queued: 0 });
  t.like(listed.services[0].metrics, { requests: 1, responses: { '2xx': 1, '4xx': 0, '5xx': 0 }, latencyMs: { boundsMs: LATENCY_BOUNDS_MS } });
  const report = gateway.metrics.snapshot();
  t.deepEqual(Object.keys(report.services), ['iris', 'wine'], 'a made-up name is not counted; a desired one is');
  t.like(report.services.wine, { requests: 1, responses: { '5xx': 1 } });
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("every scoring answer carries x-request-id: the client's own, forwarded to the container, or a new one in place of none or a malformed one", async (t) => {
  // The container refuses what it cannot score: its error is passed on with the id too.
  const upstream = await startUpstream(t, (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      res.writeHead(body === '{}' ? 200 : 422, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  const g = await startTestGateway(t, upstream.port);
  const sent = async (id?: string, body = '{}') => {
    const answer = await post(g, body, { key: KEY, headers: id === undefined ? {} : { 'x-request-id': id } });
    return { status: answer.status, id: answer.headers['x-request-id'], forwarded: upstream.received.at(-1)!.headers['x-request-id'] };
  };

  const own = 'trace-0af7651916cd43dd8448eb211c80319c';
  t.deepEqual(await sent(own), { status: 200, id: own, forwarded: own });
  t.deepEqual(await sent('x'.repeat(128)), { status: 200, id: 'x'.repeat(128), forwarded: 'x'.repeat(128) });
  t.deepEqual(await sent(own, '{"features":"none"}'), { status: 422, id: own, forwarded: own });

  const made = new Set<unknown>();
  for (const id of [undefined, '', 'has space', 'x'.repeat(129), 'tab	here', 'é']) {
    const answer = await sent(id);
    t.is(answer.status, 200);
    t.regex(String(answer.id), UUID, `in place of ${JSON.stringify(id)}`);
    t.is(answer.forwarded, answer.id);
    made.add(answer.id);
  }
  t.is(made.size, 6, 'a new id for each request');
});

test("the gateway's own refusals of a scoring request carry its x-request-id too", async (t) => {
  const hold = holding();
  const upstream = await startUpstream(t, hold.handle);
  const g = await startTestGateway(t, upstream.port, { limits: { maxConcurrent: 1, maxQueue: 0 }, desired: ['wine'] });
  const first = post(g, '{}', { key: KEY });
  await waitFor('the first request at the container', () => hold.held() === 1);
  const refusals = [
    { status: 401, opts: { key: 'wrong' } },
    { status: 404, opts: { key: KEY, path: '/v1/services/nope/score' } },
    { status: 503, opts: { key: KEY, path: '/v1/services/wine/score' } },
    { status: 429, opts: { key: KEY } },
  ];
  for (const { status, opts } of refusals) {
    const id = `refused-${status}`;
    const answer = await post(g, '{}', { ...opts, headers: { 'x-request-id': id } });
    t.is(answer.status, status);
    t.is(answer.headers['x-request-id'], id, `the ${status}`);
  }
  const anonymous = await post(g, '{}', { key: 'wrong' });
  t.regex(String(anonymous.headers['x-request-id']), UUID);
  hold.release();
  t.is((await first).status, 200);
});

test('the service list needs the key of a service the device serves; any of them will do', async (t) => {
  const upstream = await startUpstream(t, echo);
  const g = await startTestGateway(t, upstream.port);
  const other = { ...service({ maxConcurrent: 1, maxQueue: 1 }), name: 'wine', keyHash: hashSecret('the-wine-key') };
  g.routes.set(other, [{ container: `c${upstream.port}`, port: upstream.port }]);
  const list = async (key?: string) => {
    const res = await request(`${g.gateway.url}/v1/services`, { dispatcher: g.client, headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });
    return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as any };
  };
  for (const key of [undefined, '', 'wrong', `${KEY}x`]) {
    const refused = await list(key);
    t.is(refused.status, 401, `key ${JSON.stringify(key)}`);
    t.is(refused.body.error.code, 'GATEWAY_E_UNAUTHENTICATED');
    t.regex(refused.body.error.message, /API key/);
    t.is(refused.headers['www-authenticate'], 'Bearer');
    t.is(refused.body.services, undefined, 'nothing about the services leaks');
  }
  for (const key of [KEY, 'the-wine-key']) {
    const listed = await list(key);
    t.is(listed.status, 200);
    t.deepEqual(listed.body.services.map((s: { name: string }) => s.name), ['iris', 'wine']);
  }
  g.routes.delete('wine');
  t.is((await list('the-wine-key')).status, 401, 'the key of a service the device no longer serves is no key');
});

test('the swagger document points at the gateway; a container that is down is a 502', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ openapi: '3.0.3', servers: [{ url: 'http://127.0.0.1:1' }], paths: { '/score': {} } }));
  });
  const g = await startTestGateway(t, upstream.port);
  const { gateway, routes } = g;
  const doc = (await (await request(`${gateway.url}/v1/services/iris/swagger.json`, { dispatcher: g.client })).body.json()) as any;
  t.deepEqual(doc.servers, [{ url: `${gateway.url}/v1/services/iris` }]);
  t.truthy(doc.paths['/score']);

  routes.set(service({ maxConcurrent: 1, maxQueue: 0 }), [replicaAt(await deadPort())]);
  const down = await post(g, '{}', { key: KEY });
  t.is(down.status, 502);
  t.is(down.body.error.code, 'GATEWAY_E_UPSTREAM');
  t.is((await request(`${gateway.url}/v1/services/iris/swagger.json`, { dispatcher: g.client })).statusCode, 502);
  t.like(counters(gateway), { requests: 1, upstreamErrors: 1, inFlight: 0, responses: { '5xx': 1 } });
  // The replica left the rotation at its first failure; the reconciler replaces it.
  const none = await post(g, '{}', { key: KEY });
  t.is(none.status, 503);
  t.is(none.body.error.code, 'GATEWAY_E_NOT_READY');
  t.deepEqual(gateway.load('iris'), { inFlight: 0, queued: 0, ready: 0 });
});

test('a container whose /swagger.json is not JSON is a 502, not a gateway error', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"openapi": "3.0');
  });
  const g = await startTestGateway(t, upstream.port);
  const res = await request(`${g.gateway.url}/v1/services/iris/swagger.json`, { dispatcher: g.client });
  t.is(res.statusCode, 502);
  t.is(((await res.body.json()) as { error: { code: string } }).error.code, 'GATEWAY_E_UPSTREAM');
});

test('an advertised URL is what the gateway reports and what its swagger documents point at', async (t) => {
  const upstream = await startUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ openapi: '3.0.3', paths: { '/score': {} } }));
  });
  const g = await startTestGateway(t, upstream.port, { advertiseUrl: 'https://cam-07.example:8443' });
  t.is(g.gateway.url, 'https://cam-07.example:8443');
  const bound = g.logs.find((l) => l.msg === 'gateway listening') as { url?: string } | undefined;
  t.regex(String(bound?.url), /^http:\/\/127\.0\.0\.1:\d+$/);
  const doc = (await (await request(`${bound!.url}/v1/services/iris/swagger.json`, { dispatcher: g.client })).body.json()) as { servers: unknown };
  t.deepEqual(doc.servers, [{ url: 'https://cam-07.example:8443/v1/services/iris' }]);
});

test('a request the route switched under goes once more, to the new container', async (t) => {
  const next = await startUpstream(t, echo);
  const table: { routes?: RouteTable } = {};
  // The old container stops as the request reaches it, the reconciler having switched the route.
  const old = await startUpstream(t, (req) => {
    table.routes!.set(service({ maxConcurrent: 1, maxQueue: 0 }), [{ container: `c${next.port}`, port: next.port }]);
    req.socket.destroy();
  });
  const g = await startTestGateway(t, old.port, { limits: { maxConcurrent: 1, maxQueue: 0 } });
  const { gateway } = g;
  table.routes = g.routes;
  const answer = await post(g, '{"x":2}', { key: KEY });
  t.is(answer.status, 200);
  t.is(answer.body.size, 7);
  t.is(old.received.length, 1);
  t.is(next.received.length, 1);
  t.like(counters(gateway), { requests: 1, upstreamErrors: 0, responses: { '2xx': 1 } });
});

test('a wrong key is refused before the body is read: a client still sending it slowly reads the 401', async (t) => {
  const upstream = await startUpstream(t, echo);
  const g = await startTestGateway(t, upstream.port);
  const { gateway, logs } = g;
  const client = await RawClient.open(t, gateway);
  const total = 1024 * 1024;
  await client.write(head({ key: 'wrong', length: total }));
  await client.write(Buffer.alloc(16 * 1024, 0x20));
  await waitFor('the 401', () => client.text.includes('GATEWAY_E_UNAUTHENTICATED'), 5000, 10);
  t.deepEqual(client.statuses(), [401]);
  t.regex(client.text, /www-authenticate: Bearer/i);

  // The rest of the body, slowly: the gateway reads and drops it rather than resetting the connection,
  await client.trickle(total - 16 * 1024, 32 * 1024, 5);
  // and the same connection then serves the next request.
  await client.write(`${head({ key: KEY, length: 2 })}{}`);
  await waitFor('the second answer', () => client.statuses().length === 2, 5000, 10);
  t.deepEqual(client.statuses(), [401, 200]);
  t.is(client.error, undefined);
  t.is(upstream.received.length, 1, 'only the request with the key reached the container');
  t.like(counters(gateway), { requests: 2, unauthenticated: 1, responses: { '2xx': 1, '4xx': 1 } });
  t.deepEqual(logs.filter((l) => l.level >= 40), []);
});

test('a refused client that keeps sending is cut off once the gateway has dropped a bounded amount', async (t) => {
  const upstream = await startUpstream(t, echo);
  const { gateway } = await startTestGateway(t, upstream.port);
  const client = await RawClient.open(t, gateway);
  const total = 64 * 1024 * 1024;
  await client.write(head({ length: total }));
  let sent = 0;
  const chunk = Buffer.alloc(256 * 1024, 0x20);
  for (; sent < total && !client.socket.destroyed; sent += chunk.length) await client.write(chunk);
  await client.closed;
  t.deepEqual(client.statuses(), [401]);
  t.true(sent < total, `the gateway cut a client that kept sending (it took ${sent} bytes)`);
});

test('a full queue is refused with 429 before the body is read', async (t) => {
  const hold = holding();
  const upstream = await startUpstream(t, hold.handle);
  const g = await startTestGateway(t, upstream.port, { limits: { maxConcurrent: 1, maxQueue: 0 } });
  const { gateway } = g;
  const first = post(g, '{}', { key: KEY });
  await waitFor('the first request at the container', () => hold.held() === 1);

  const client = await RawClient.open(t, gateway);
  const total = 1024 * 1024;
  await client.write(head({ key: KEY, length: total }));
  await client.write(Buffer.alloc(16 * 1024, 0x20));
  await waitFor('the 429', () => client.text.includes('GATEWAY_E_QUEUE_FULL'), 5000, 10);
  t.deepEqual(client.statuses(), [429]);
  t.regex(client.text, /retry-after: 1/i);
  await client.trickle(total - 16 * 1024, 64 * 1024, 1);
  t.is(client.error, undefined);

  hold.release();
  t.is((await first).status, 200);
  t.is(upstream.received.length, 1);
  t.like(counters(gateway), { requests: 2, rejected: 1, inFlight: 0, responses: { '2xx': 1, '4xx': 1 } });
});

test('over GATEWAY_MAX_BODY_BYTES: 413, announced or found while streaming, and the client reads it', async (t) => {
  const upstream = await startUpstream(t, echo);
  const g = await startTestGateway(t, upstream.port);
  const { gateway } = g;

  const announced = await RawClient.open(t, gateway);
  await announced.write(head({ key: KEY, length: GATEWAY_MAX_BODY_BYTES + 1 }));
  await announced.write(Buffer.alloc(64 * 1024, 0x20));
  await waitFor('the 413', () => announced.text.includes('GATEWAY_E_TOO_LARGE'), 5000, 10);
  t.deepEqual(announced.statuses(), [413]);

  // No length: the limit is found while reading, and a client writing at full speed still reads the
  // 413, the gateway reading and dropping what follows (more than socket buffers hold).
  const streamed = await RawClient.open(t, gateway);
  await streamed.write(head({ key: KEY, chunked: true }));
  const chunk = Buffer.alloc(256 * 1024, 0x20);
  for (let sent = 0; sent < GATEWAY_MAX_BODY_BYTES + 12 * 1024 * 1024; sent += chunk.length) {
    await streamed.write(`${chunk.length.toString(16)}\r\n`);
    await streamed.write(chunk);
    await streamed.write('\r\n');
  }
  await streamed.write('0\r\n\r\n');
  await waitFor('the 413', () => streamed.text.includes('GATEWAY_E_TOO_LARGE'), 5000, 10);
  t.deepEqual(streamed.statuses(), [413]);
  t.is(streamed.error, undefined);
  t.is(upstream.received.length, 0);
});

test('a body that does not arrive within the body timeout is a 408', async (t) => {
  const upstream = await startUpstream(t, echo);
  const g = await startTestGateway(t, upstream.port, { bodyTimeoutMs: 200 });
  const { gateway } = g;
  const client = await RawClient.open(t, gateway);
  await client.write(`${head({ key: KEY, length: 100 })}{"x":`);
  await waitFor('the 408', () => client.text.includes('GATEWAY_E_BODY_TIMEOUT'), 5000, 10);
  t.deepEqual(client.statuses(), [408]);
  t.is(upstream.received.length, 0);
  t.like(counters(gateway), { requests: 1, inFlight: 0, queued: 0, responses: { '4xx': 1 } });
});

test('a client that goes away: the container sees the request aborted and the slot goes to the next', async (t) => {
  let upstreamSawAbort!: () => void;
  const sawAbort = new Promise<void>((resolve) => (upstreamSawAbort = resolve));
  const upstream = await startUpstream(t, (req, res) => {
    if (upstream.received.length > 1) return echo(req, res);
    req.resume();
    res.once('close', () => {
      if (!res.writableFinished) upstreamSawAbort();
    });
  });
  const g = await startTestGateway(t, upstream.port, { limits: { maxConcurrent: 1, maxQueue: 0 } });
  const { gateway, logs } = g;
  const leaving = new AbortController();
  const first = post(g, '{}', { key: KEY, signal: leaving.signal });
  await waitFor('the first request at the container', () => upstream.received.length === 1);
  t.like(counters(gateway), { inFlight: 1 });
  leaving.abort();
  await t.throwsAsync(first, { any: true });
  await Promise.race([sawAbort, sleep(5000).then(() => Promise.reject(new Error('the container never saw the request aborted')))]);
  await waitFor('the slot given back', () => counters(gateway).inFlight === 0);

  const next = await post(g, '{}', { key: KEY });
  t.is(next.status, 200, 'admitted: maxConcurrent 1 and no queue');
  t.like(counters(gateway), { requests: 2, aborted: 1, responses: { '2xx': 1, '4xx': 0, '5xx': 0 } });
  t.deepEqual(logs.filter((l) => l.level >= 40), [], 'a client going away is not a gateway problem');
});

test('a client that goes away while queued leaves the queue', async (t) => {
  const hold = holding();
  const upstream = await startUpstream(t, hold.handle);
  const g = await startTestGateway(t, upstream.port, { limits: { maxConcurrent: 1, maxQueue: 1 } });
  const { gateway } = g;
  const first = post(g, '{}', { key: KEY });
  await waitFor('the first request at the container', () => hold.held() === 1);
  const leaving = new AbortController();
  const queued = post(g, '{}', { key: KEY, signal: leaving.signal });
  await waitFor('the second request queued', () => counters(gateway).queued === 1);
  leaving.abort();
  await t.throwsAsync(queued, { any: true });
  await waitFor('the queue empty', () => counters(gateway).queued === 0);
  hold.release();
  t.is((await first).status, 200);
  t.is(upstream.received.length, 1, 'the one that left never reached the container');
  t.like(counters(gateway), { requests: 2, aborted: 1, inFlight: 0 });
});

test('a container that breaks off its answer: the client response is cut and the slot given back', async (t) => {
  const upstream = await startUpstream(t, (req, res) => {
    if (upstream.received.length > 1) return echo(req, res);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"partial":');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  const g = await startTestGateway(t, upstream.port, { limits: { maxConcurrent: 1, maxQueue: 0 } });
  const { gateway, logs } = g;
  const res = await request(`${gateway.url}${SCORE}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '{}', dispatcher: g.client });
  t.is(res.statusCode, 200, 'the status had gone out');
  await t.throwsAsync(res.body.text(), undefined, 'but the body is cut, not passed off as complete');
  await waitFor('the slot given back', () => counters(gateway).inFlight === 0);
  t.is((await post(g, '{}', { key: KEY })).status, 200);
  t.like(counters(gateway), { requests: 2, upstreamErrors: 1, aborted: 0, responses: { '2xx': 1 } });
  t.is(counters(gateway).latencyMs.counts.reduce((a, b) => a + b), 1, 'only the complete answer is timed');
  t.deepEqual(logs.filter((l) => l.level >= 40).map((l) => l.msg), ['the container broke off its answer']);
});

test("the container's answer goes out at the client's pace", async (t) => {
  const total = 64 * 1024 * 1024;
  let written = () => 0;
  const upstream = await startUpstream(t, (req, res) => {
    req.resume();
    written = writeBulk(res, total);
  });
  const g = await startTestGateway(t, upstream.port);
  const { gateway } = g;
  const client = await RawClient.open(t, gateway);
  client.socket.pause();
  await client.write(`${head({ key: KEY, length: 2 })}{}`);
  await assertStalls(t, () => written(), total);
  client.socket.resume();
  await waitFor('the whole answer', () => client.text.endsWith('0\r\n\r\n'), 30_000, 50);
  t.true(client.bytes > total);
  t.like(counters(gateway), { requests: 1, inFlight: 0, responses: { '2xx': 1 } });
});

test('counters match the traffic: of 10 at once with maxConcurrent 1 and maxQueue 2, 3 served and 7 refused', async (t) => {
  const hold = holding();
  const upstream = await startUpstream(t, hold.handle);
  const g = await startTestGateway(t, upstream.port, { limits: { maxConcurrent: 1, maxQueue: 2 } });
  const { gateway } = g;
  t.deepEqual(gateway.metrics.takeInterval().services, {});
  const burst = Promise.all(Array.from({ length: 10 }, () => post(g, '{}', { key: KEY })));
  await waitFor('1 at the container, 2 queued, 7 refused', () => hold.held() === 1 && counters(gateway).queued === 2 && counters(gateway).rejected === 7);
  t.like(gateway.metrics.snapshot().services.iris, { requests: 10, inFlight: 1, queued: 2, responses: { '2xx': 0, '4xx': 7 } });
  hold.release();
  t.deepEqual((await burst).map((r) => r.status).sort(), [200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);

  const interval = gateway.metrics.takeInterval().services.iris!;
  t.like(interval, { requests: 10, rejected: 7, unauthenticated: 0, queueTimeouts: 0, upstreamErrors: 0, aborted: 0, inFlight: 0, queued: 0 });
  t.deepEqual(interval.responses, { '2xx': 3, '3xx': 0, '4xx': 7, '5xx': 0 });
  t.is(interval.latencyMs.counts.reduce((a, b) => a + b), 3, 'the three served are timed');

  t.is((await post(g, '{}', { key: 'nope' })).status, 401);
  t.like(gateway.metrics.takeInterval().services.iris, { requests: 1, unauthenticated: 1, rejected: 0, responses: { '2xx': 0, '4xx': 1 } });
  t.like(counters(gateway), { requests: 11, rejected: 7, unauthenticated: 1, responses: { '2xx': 3, '4xx': 8 } });
});

test('a request that waits longer than the queue timeout gets 503', async (t) => {
  const hold = holding();
  const upstream = await startUpstream(t, hold.handle);
  const g = await startTestGateway(t, upstream.port, { limits: { maxConcurrent: 1, maxQueue: 1 }, queueTimeoutMs: 100 });
  const { gateway } = g;
  const first = post(g, '{}', { key: KEY });
  await waitFor('the first request at the container', () => hold.held() === 1);
  const late = await post(g, '{}', { key: KEY });
  t.is(late.status, 503);
  t.is(late.body.error.code, 'GATEWAY_E_QUEUE_TIMEOUT');
  t.is(late.body.error.message, 'service iris: no slot within 0.1 s (1 replica × 1 in flight)');
  t.is(late.headers['retry-after'], '1');
  hold.release();
  t.is((await first).status, 200);
  t.like(counters(gateway), { requests: 2, queueTimeouts: 1, responses: { '2xx': 1, '5xx': 1 } });
});

/** Sequential posts, as a client that waits for each answer. */
async function postEach(g: TestGateway, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await post(g, '{}', { key: KEY })).status);
  return statuses;
}

test.serial('two replicas share the load: 200 sequential pairs, neither gets more than 65 %', async (t) => {
  const a = await startUpstream(t, echo);
  const b = await startUpstream(t, echo);
  const g = await startTestGateway(t, [a.port, b.port]);
  for (let i = 0; i < 200; i++) {
    const pair = await Promise.all([post(g, '{}', { key: KEY }), post(g, '{}', { key: KEY })]);
    t.deepEqual(pair.map((r) => r.status), [200, 200], JSON.stringify(pair.map((r) => r.body)));
  }
  for (const upstream of [a, b]) t.true(upstream.received.length <= 0.65 * 400, `one replica took ${upstream.received.length} of 400`);
  // Sequential single requests alternate too (round robin among equally idle replicas).
  const before = a.received.length;
  await postEach(g, 10);
  t.is(a.received.length - before, 5);
});

test.serial('3 replicas, maxConcurrent 1, maxQueue 10: 3 in flight and 30 waiting in one FIFO queue, the 34th gets 429', async (t) => {
  const holds = [holdingEach(), holdingEach(), holdingEach()];
  const upstreams = await Promise.all(holds.map((h) => startUpstream(t, h.handle)));
  const g = await startTestGateway(t, upstreams.map((u) => u.port), { limits: { maxConcurrent: 1, maxQueue: 10 } });
  const held = () => holds.reduce((n, h) => n + h.held(), 0);
  const answers: Array<Promise<{ status: number }>> = [];
  for (let i = 0; i < 33; i++) {
    answers.push(post(g, JSON.stringify({ i }), { key: KEY }));
    // One at a time, so the queue's order is the order sent.
    await waitFor(`request ${i} in`, () => held() + g.gateway.load('iris').queued === i + 1, 5000, 5);
  }
  t.deepEqual(holds.map((h) => h.held()), [1, 1, 1], 'one on each replica');
  t.deepEqual(g.gateway.load('iris'), { inFlight: 3, queued: 30, ready: 3 });
  const refused = await post(g, '{}', { key: KEY });
  t.is(refused.status, 429);
  t.is(refused.body.error.message, 'service iris is busy: 3 replicas × 1 in flight and 3 × 10 waiting');

  // Whichever replica frees a slot takes the head of the queue: no request waits behind a busy one.
  holds[1]!.releaseOne();
  await waitFor('the head of the queue at the second replica', () => holds[1]!.held() === 1);
  t.is(holds[1]!.bodies.at(-1), '{"i":3}');
  holds[2]!.releaseOne();
  await waitFor('the next at the third replica', () => holds[2]!.held() === 1);
  t.is(holds[2]!.bodies.at(-1), '{"i":4}');
  t.like(g.gateway.load('iris'), { inFlight: 3, queued: 28 });

  // In flight too: a request on its way to a replica is in neither count yet, and would be held for good.
  while (held() > 0 || g.gateway.load('iris').queued > 0 || g.gateway.load('iris').inFlight > 0) {
    for (const h of holds) h.releaseOne();
    await sleep(1);
  }
  t.deepEqual((await Promise.all(answers)).filter((r) => r.status !== 200), []);
  const order = holds.flatMap((h) => h.bodies.map((b) => (JSON.parse(b) as { i: number }).i));
  t.is(order.length, 33);
});

test('a dead replica leaves the rotation at its first failure, the request goes to another, and the reconciler hears once', async (t) => {
  const dead = await deadPort();
  const live = await startUpstream(t, echo);
  const down: NonNullable<TestGatewayOptions['down']> = [];
  // The dead one first: the round robin starts with it.
  const g = await startTestGateway(t, [dead, live.port], { down });
  const first = await post(g, '{"x":1}', { key: KEY });
  t.is(first.status, 200, 'retried on the live replica');
  t.is(first.body.size, 7);
  t.is(down.length, 1);
  t.like(down[0], { service: 'iris', replica: { container: `c${dead}`, port: dead } });
  t.regex(down[0]!.reason, /connection failed: .*ECONNREFUSED/);
  t.deepEqual(await postEach(g, 20), new Array(20).fill(200));
  t.is(live.received.length, 21);
  t.is(down.length, 1, 'told once');
  t.like(counters(g.gateway), { requests: 21, upstreamErrors: 0, replicas: 1 });
  t.like(g.gateway.metrics.takeInterval().services.iris, { requests: 21, replicas: 1 }, 'telemetry carries the ready replicas');
  const listed = (await (await request(`${g.gateway.url}/v1/services`, { dispatcher: g.client, headers: { authorization: `Bearer ${KEY}` } })).body.json()) as { services: any[] };
  t.deepEqual(listed.services[0].replicas, { ready: 1, inFlight: { [`c${live.port}`]: 0 } });

  // Forgotten once the route drops it: listed again (a replacement on the same port), it is in rotation.
  g.routes.set(service({ maxConcurrent: 4, maxQueue: 4 }), [replicaAt(live.port)]);
  t.is(g.gateway.load('iris').ready, 1);
  g.routes.set(service({ maxConcurrent: 4, maxQueue: 4 }), [replicaAt(dead), replicaAt(live.port)]);
  t.is(g.gateway.load('iris').ready, 2);
});

test.serial('a replica killed mid-request: only the requests inside it get 502, the rest are served by the other', async (t) => {
  const holds = [holdingEach(), holdingEach()];
  const [a, b] = await Promise.all(holds.map((h) => startUpstream(t, h.handle)));
  const down: NonNullable<TestGatewayOptions['down']> = [];
  const g = await startTestGateway(t, [a!.port, b!.port], { limits: { maxConcurrent: 1, maxQueue: 5 }, down });
  const answers = Array.from({ length: 4 }, () => post(g, '{}', { key: KEY }));
  await waitFor('one on each replica, two queued', () => holds[0]!.held() === 1 && holds[1]!.held() === 1 && g.gateway.load('iris').queued === 2);
  a!.kill();
  await waitFor('the killed replica out of rotation', () => g.gateway.load('iris').ready === 1);
  t.is(down.length, 1);
  t.is(down[0]!.replica.container, `c${a!.port}`);
  while (g.gateway.load('iris').inFlight + g.gateway.load('iris').queued > 0) {
    holds[1]!.releaseOne();
    await sleep(1);
  }
  t.deepEqual((await Promise.all(answers)).map((r) => r.status).sort(), [200, 200, 200, 502]);
  t.is(b!.received.length, 3);
  const after = Promise.all(Array.from({ length: 6 }, () => post(g, '{}', { key: KEY })));
  while ((await Promise.race([after.then(() => true), sleep(5).then(() => false)])) === false) holds[1]!.releaseOne();
  t.true((await after).every((r) => r.status === 200));
  t.like(counters(g.gateway), { upstreamErrors: 1, responses: { '2xx': 9, '5xx': 1 } });
  t.is(down.length, 1);
});

test.serial('requests inside a replica that dies are not scored again elsewhere, though the route drops it at once: 502 each', async (t) => {
  const holds = [holdingEach(), holdingEach()];
  const [a, b] = await Promise.all(holds.map((h) => startUpstream(t, h.handle)));
  const down: NonNullable<TestGatewayOptions['down']> = [];
  const g = await startTestGateway(t, [a!.port, b!.port], { limits: { maxConcurrent: 3, maxQueue: 0 }, down, dropDown: true });
  const answers = Array.from({ length: 6 }, () => post(g, '{}', { key: KEY }));
  await waitFor('three inside each replica', () => holds[0]!.held() === 3 && holds[1]!.held() === 3);
  a!.kill();
  await waitFor('the killed replica out of the route', () => g.routes.get('iris')?.replicas.length === 1);
  for (let i = 0; i < 3; i++) holds[1]!.releaseOne();
  t.deepEqual((await Promise.all(answers)).map((r) => r.status).sort(), [200, 200, 200, 502, 502, 502]);
  t.is(b!.received.length, 3, "none of the dead replica's requests went to the other");
  t.is(down.length, 1);
});

test('limits changed on the route apply to the next request, with no restart', async (t) => {
  const hold = holding();
  const upstream = await startUpstream(t, hold.handle);
  const g = await startTestGateway(t, upstream.port, { limits: { maxConcurrent: 1, maxQueue: 0 } });
  const first = post(g, '{}', { key: KEY });
  await waitFor('the first at the container', () => hold.held() === 1);
  const refused = await post(g, '{}', { key: KEY });
  t.is(refused.status, 429);
  t.is(refused.body.error.message, 'service iris is busy: 1 replica × 1 in flight and 1 × 0 waiting');
  g.routes.set(service({ maxConcurrent: 1, maxQueue: 2 }), [replicaAt(upstream.port)]);
  const queued = post(g, '{}', { key: KEY });
  await waitFor('the second queued', () => g.gateway.load('iris').queued === 1);
  g.routes.set(service({ maxConcurrent: 3, maxQueue: 0 }), [replicaAt(upstream.port)]);
  const third = post(g, '{}', { key: KEY });
  await waitFor('the queued one and the third at the container', () => hold.held() === 3);
  t.deepEqual(g.gateway.load('iris'), { inFlight: 3, queued: 0, ready: 1 });
  hold.release();
  t.deepEqual((await Promise.all([first, queued, third])).map((r) => r.status), [200, 200, 200]);
});

test('health checks on the gateway clock: a replica that fails its probe leaves the rotation', async (t) => {
  const a = await startUpstream(t, echo);
  const b = await startUpstream(t, echo);
  const clock = new ManualClock(Date.now());
  const probed: number[] = [];
  const failing = new Set<number>();
  const health: HealthProbe = {
    probe: async (port): Promise<HealthAnswer> => {
      probed.push(port);
      return failing.has(port) ? { healthy: false, failed: 'init() threw' } : { healthy: true };
    },
  };
  const down: NonNullable<TestGatewayOptions['down']> = [];
  const g = await startTestGateway(t, [a.port, b.port], { clock, health, healthIntervalMs: 2000, down });
  clock.advance(1999);
  t.deepEqual(probed, [], 'not before the interval');
  clock.advance(1);
  await waitFor('both probed', () => probed.length === 2);
  t.deepEqual(down, []);
  failing.add(a.port);
  await waitFor('the next round scheduled', () => clock.pending() === 1);
  clock.advance(2000);
  await waitFor('the failing replica out', () => down.length === 1);
  t.like(down[0], { service: 'iris', replica: { port: a.port } });
  t.regex(down[0]!.reason, /health check failed: init\(\) threw/);
  t.deepEqual(await postEach(g, 6), new Array(6).fill(200));
  t.is(a.received.length, 0);
  await waitFor('the next round scheduled', () => clock.pending() === 1);
  probed.length = 0;
  clock.advance(2000);
  await waitFor('the next round', () => probed.length === 1);
  t.deepEqual(probed, [b.port], 'only replicas in rotation are probed');
});

test('a replica that misses health checks but still takes connections leaves the rotation only after 3 rounds in a row', async (t) => {
  const a = await startUpstream(t, echo);
  const b = await startUpstream(t, echo);
  const clock = new ManualClock(Date.now());
  let rounds = 0;
  // Busy, not dead: no answer in time, no "failed".
  const slow = new Set<number>([a.port]);
  const health: HealthProbe = {
    probe: async (port): Promise<HealthAnswer> => {
      if (port === a.port) rounds += 1;
      return slow.has(port) ? { healthy: false, failed: null } : { healthy: true };
    },
  };
  const down: NonNullable<TestGatewayOptions['down']> = [];
  await startTestGateway(t, [a.port, b.port], { clock, health, healthIntervalMs: 1000, down });
  const round = async (n: number) => {
    await waitFor('the next round scheduled', () => clock.pending() === 1);
    clock.advance(1000);
    await waitFor(`round ${n}`, () => rounds === n);
  };
  await round(1);
  await round(2);
  slow.delete(a.port);
  await round(3);
  slow.add(a.port);
  await round(4);
  await round(5);
  await waitFor('round 5 judged', () => clock.pending() === 1);
  t.deepEqual(down, [], 'a healthy answer in between starts the count again');
  await round(6);
  await waitFor('the replica out', () => down.length === 1);
  t.regex(down[0]!.reason, /no healthy answer 3 times in a row/);
});

test('a connection reset by a replica that still accepts connections is a 502, and the replica stays in rotation', async (t) => {
  const upstream = await startUpstream(t, (req, res) => {
    if (upstream.received.length > 1) return echo(req, res);
    req.socket.destroy();
  });
  const down: NonNullable<TestGatewayOptions['down']> = [];
  const g = await startTestGateway(t, upstream.port, { down });
  const reset = await post(g, '{}', { key: KEY });
  t.is(reset.status, 502);
  t.is(reset.body.error.code, 'GATEWAY_E_UPSTREAM');
  t.deepEqual(down, [], 'one broken connection is not a dead replica');
  t.is(g.gateway.load('iris').ready, 1);
  t.is((await post(g, '{}', { key: KEY })).status, 200);
});

test('a replica that joins a quiet service takes the waiting requests at the next health round', async (t) => {
  const hold = holding();
  const a = await startUpstream(t, hold.handle);
  const b = await startUpstream(t, echo);
  const clock = new ManualClock(Date.now());
  const health: HealthProbe = { probe: async () => ({ healthy: true }) };
  const g = await startTestGateway(t, a.port, { clock, health, healthIntervalMs: 1000, limits: { maxConcurrent: 1, maxQueue: 2 } });
  const first = post(g, '{}', { key: KEY });
  await waitFor('the first at the container', () => hold.held() === 1);
  const waiting = post(g, '{}', { key: KEY });
  await waitFor('the second queued', () => g.gateway.load('iris').queued === 1);
  g.routes.set(service({ maxConcurrent: 1, maxQueue: 2 }), [replicaAt(a.port), replicaAt(b.port)]);
  clock.advance(1000);
  t.is((await waiting).status, 200);
  t.is(b.received.length, 1);
  hold.release();
  t.is((await first).status, 200);
});

/** A certificate for 127.0.0.1 signed by `ca`, as the agent would get it. */
async function loopbackCertificate(ca: TestCa): Promise<ServingCertificate & { serial: string }> {
  const keys = await generateKeyPair();
  const csr = await createCsr('gateway', keys, { commonName: 'dev-1', names: gatewayNames({ host: '127.0.0.1', interfaces: {} }) });
  const now = Date.now();
  const cert = await signCsr(ca, csr, new Date(now - 60_000), new Date(now + 3600_000));
  return { key: privateKeyPem(keys.privateKey), cert, serial: new X509Certificate(cert).serialNumber };
}

/** GET /v1/services over `agent`; the status and the TLS socket it went over. */
function listServices(url: string, agent: HttpsAgent): Promise<{ status: number; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(`${url}/v1/services`, { agent, headers: { authorization: `Bearer ${KEY}` } }, (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket as TLSSocket }));
    });
    req.once('error', reject);
  });
}

test('an HTTPS gateway binds at once, refuses handshakes until it has a certificate, and swaps certificates without dropping open connections', async (t) => {
  const ca = await makeTestCa(new Date(Date.now() - 3600_000));
  const g = await startTestGateway(t, await deadPort(), { tls: { certificate: null } });
  t.regex(g.gateway.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.true(g.logs.some((l) => l.msg === 'waiting for the gateway certificate'));
  const port = Number(new URL(g.gateway.url).port);
  await t.throwsAsync(servedSerial('127.0.0.1', port, ca.pem), undefined, 'no certificate yet: the handshake fails');

  const first = await loopbackCertificate(ca);
  g.gateway.setCertificate(first);
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: ca.pem });
  t.teardown(() => agent.destroy());
  const before = await listServices(g.gateway.url, agent);
  t.is(before.status, 200);
  t.is(before.socket.getPeerCertificate().serialNumber, first.serial);

  const second = await loopbackCertificate(ca);
  g.gateway.setCertificate(second);
  const after = await listServices(g.gateway.url, agent);
  t.is(after.status, 200);
  t.is(after.socket, before.socket, 'the keep-alive connection carried on');
  t.is(await servedSerial('127.0.0.1', port, ca.pem), second.serial, 'a new connection gets the new certificate');
});

test('a plain HTTP request to the HTTPS gateway gets no answer', async (t) => {
  const ca = await makeTestCa(new Date(Date.now() - 3600_000));
  const g = await startTestGateway(t, await deadPort(), { tls: { certificate: await loopbackCertificate(ca) } });
  const plain = g.gateway.url.replace('https://', 'http://');
  await t.throwsAsync(request(`${plain}/v1/services`, { dispatcher: g.client, headers: { authorization: `Bearer ${KEY}` } }));
});
