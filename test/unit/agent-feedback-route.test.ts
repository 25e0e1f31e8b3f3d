/**
 * `POST /v1/services/NAME/feedback` through the real gateway over HTTP on 127.0.0.1, with a node
 * server in the container's place (it answers /score and /swagger.json), the real index of
 * captured request ids, the real outbox and the group commit: 202 only once the label is in the
 * outbox on disk, and each refusal with its status and code.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { request } from 'undici';
import { FeedbackQueue } from '../../agent/feedback/feedback-queue.js';
import { InputSchemas } from '../../agent/feedback/input-schema.js';
import { RequestIndex } from '../../agent/feedback/request-index.js';
import { feedbackHandler, FEEDBACK_MAX_BODY_BYTES } from '../../agent/gateway/feedback.js';
import { startGateway } from '../../agent/gateway/server.js';
import { RouteTable } from '../../agent/reconcile/routes.js';
import { Outbox } from '../../agent/telemetry/outbox.js';
import { systemClock } from '../../shared/clock.js';
import { decodeMessage, MAX_MESSAGE_BYTES, type DesiredService, type FeedbackItem } from '../../shared/protocol.js';
import { hashSecret } from '../../shared/secrets.js';
import { waitFor } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });
const KEYS = { iris: 'iris-key', other: 'other-key' } as const;
type Name = keyof typeof KEYS;

const SWAGGER = {
  openapi: '3.1.0',
  paths: { '/score': { post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/ScoreInput' } } } } } } },
  components: { schemas: { ScoreInput: { type: 'object', required: ['features'], properties: { features: { type: 'array', items: { type: 'number' } } } } } },
};

async function startContainer(t: ExecutionContext): Promise<number> {
  const server = createServer((req, res) => {
    req.resume().on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.url === '/swagger.json' ? SWAGGER : { y: 1 }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

const service = (name: Name, revision: number): DesiredService => ({
  name,
  revision,
  image: `reg/${name}@sha256:${'0'.repeat(64)}`,
  limits: { maxConcurrent: 4, maxQueue: 4, memoryBytes: null, cpus: null },
  keyHash: hashSecret(KEYS[name]),
  models: [{ name: `${name}-model`, version: revision, digest: `sha256:${'1'.repeat(64)}` }],
  capture: { rate: 1, maxBodyBytes: 4096, redact: [] },
});

async function setup(t: ExecutionContext, opts: { feedbackQuota?: number; routes?: RouteTable } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'feedback-route-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const port = await startContainer(t);
  const routes = opts.routes ?? new RouteTable();
  routes.set(service('iris', 3), [{ container: 'c-iris', port }]);
  routes.set(service('other', 1), [{ container: 'c-other', port }]);
  const outboxOptions = { limits: { metrics: 1 << 20, capture: 1 << 20, feedback: opts.feedbackQuota ?? 1 << 20 }, maxBatchBytes: MAX_MESSAGE_BYTES, logger };
  const outbox = await Outbox.open(join(dir, 'outbox'), outboxOptions);
  const index = await RequestIndex.open(join(dir, 'requests'), { clock: systemClock, logger });
  let n = 0;
  const queue = new FeedbackQueue({ append: (b) => outbox.append(b), nextId: () => `f.test.${++n}`, logger });
  const gateway = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    routes,
    desired: () => ['iris', 'other'],
    clock: systemClock,
    logger,
    capture: index.indexing({ add: () => undefined }),
    feedback: feedbackHandler({ index, queue, schemas: new InputSchemas(), clock: systemClock }),
  });
  t.teardown(async () => {
    await gateway.close();
    await index.close();
    await outbox.close();
  });
  const score = async (name: Name, { waitForIndex = true } = {}) => {
    const res = await request(`${gateway.url}/v1/services/${name}/score`, { method: 'POST', headers: { authorization: `Bearer ${KEYS[name]}`, 'content-type': 'application/json' }, body: '{"features":[1,2]}' });
    await res.body.dump();
    const id = String(res.headers['x-request-id']);
    // The sample is taken just after the answer went out.
    if (waitForIndex) await waitFor(`request ${id} indexed`, () => index.get(id) !== undefined, 5000, 2);
    return id;
  };
  const label = async (name: Name, body: unknown, key: string = KEYS[name]) => {
    const res = await request(`${gateway.url}/v1/services/${name}/feedback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as Record<string, any> };
  };
  /** What the outbox holds for the hub, read from disk by a second outbox (as after a kill -9). */
  const queued = async (): Promise<FeedbackItem[]> => {
    const copy = await Outbox.open(join(dir, 'outbox'), outboxOptions);
    const items: FeedbackItem[] = [];
    for (let b = await copy.next(); b; b = await copy.next()) {
      const decoded = decodeMessage('telemetry', b.bytes);
      if (decoded.ok && decoded.value.kind === 'feedback') items.push(...decoded.value.items);
    }
    await copy.close();
    return items;
  };
  return { score, label, queued, index, routes, port, url: gateway.url };
}

test('a label for a captured request is accepted (202) once it is in the outbox on disk, with the revision and models that answered', async (t) => {
  const { score, label, queued } = await setup(t);
  const id = await score('iris');
  const res = await label('iris', { requestId: id, label: { species: 'setosa' } });
  t.is(res.status, 202);
  t.deepEqual(res.json, { requestId: id, accepted: true });
  const items = await queued();
  t.is(items.length, 1);
  t.like(items[0], { requestId: id, service: 'iris', revision: 3, models: [{ name: 'iris-model', version: 3 }], label: { species: 'setosa' } });
  t.false('input' in items[0]!);
  t.is((await label('iris', { requestId: id, label: 'versicolor' })).status, 202, 'a second label for the same request is taken too');
});

test('an unknown request id is 404, another service’s is 409', async (t) => {
  const { score, label, queued } = await setup(t);
  const unknown = await label('iris', { requestId: 'never-seen', label: 1 });
  t.is(unknown.status, 404);
  t.is(unknown.json.error.code, 'GATEWAY_E_REQUEST_UNKNOWN');
  t.regex(unknown.json.error.message, /not captured on this device, or is too old: send \{"input"/);
  const theirs = await score('other');
  const other = await label('iris', { requestId: theirs, label: 1 });
  t.is(other.status, 409);
  t.is(other.json.error.code, 'GATEWAY_E_REQUEST_OTHER_SERVICE');
  t.deepEqual(await queued(), []);
});

test('an inline example is checked against the schema of the container serving now; valid → 202 with a new request id', async (t) => {
  const { label, queued } = await setup(t);
  const bad = await label('iris', { input: { features: [1, 'two'] }, label: 0 });
  t.is(bad.status, 400);
  t.is(bad.json.error.code, 'GATEWAY_E_FEEDBACK_INVALID');
  t.is(bad.json.error.message, 'input.features.1: must be number');
  const ok = await label('iris', { input: { features: [1, 2] }, label: 0 });
  t.is(ok.status, 202);
  t.regex(ok.json.requestId, /^[0-9a-f-]{36}$/);
  t.like((await queued())[0], { requestId: ok.json.requestId, service: 'iris', revision: 3, input: { features: [1, 2] }, label: 0 });
});

test('the key, the body size and the body shape are checked', async (t) => {
  const { label, score } = await setup(t);
  const id = await score('iris');
  const wrongKey = await label('iris', { requestId: id, label: 1 }, KEYS.other);
  t.is(wrongKey.status, 401);
  t.is(wrongKey.json.error.code, 'GATEWAY_E_UNAUTHENTICATED');
  const big = await label('iris', { requestId: id, label: 'x'.repeat(FEEDBACK_MAX_BODY_BYTES) });
  t.is(big.status, 413);
  const nullLabel = await label('iris', { requestId: id, label: null });
  t.is(nullLabel.status, 400);
  t.regex(nullLabel.json.error.message, /^label: is required/);
  const unknownService = await label('nope' as Name, { requestId: id, label: 1 }, 'k');
  t.is(unknownService.status, 404);
});

test('when the feedback lane is full new labels get 503 with Retry-After; those accepted before stay', async (t) => {
  // Room for the largest batch, and little more: a few labels of 60 KB fill it.
  const { label, score, queued } = await setup(t, { feedbackQuota: MAX_MESSAGE_BYTES + 200 });
  const id = await score('iris');
  const statuses: number[] = [];
  let full: Awaited<ReturnType<typeof label>> | undefined;
  for (let i = 0; i < 8 && !full; i++) {
    const res = await label('iris', { requestId: id, label: 'x'.repeat(60_000) });
    statuses.push(res.status);
    if (res.status !== 202) full = res;
  }
  t.truthy(full, `refused at last (${statuses.join(', ')})`);
  t.is(full!.status, 503);
  t.is(full!.json.error.code, 'GATEWAY_E_FEEDBACK_FULL');
  t.is(full!.headers['retry-after'], '60');
  t.is((await queued()).length, statuses.filter((s) => s === 202).length, 'every accepted label is still queued');
});

// The gateway takes the sample on the setImmediate after the answer went out, which runs before it
// reads any new request: a label can never arrive before its request is indexed.
test('a label sent the instant its answer arrived is taken', async (t) => {
  const { score, label } = await setup(t);
  for (let i = 0; i < 20; i++) {
    const id = await score('iris', { waitForIndex: false });
    t.is((await label('iris', { requestId: id, label: i })).status, 202);
  }
});

test('a label whose body is still coming while the revision switches is filed under the revision serving once it is read', async (t) => {
  /** Counts lookups, to know when the gateway has the request's headers. */
  class WatchedRoutes extends RouteTable {
    lookups = 0;
    override get(name: string) {
      this.lookups += 1;
      return super.get(name);
    }
  }
  const routes = new WatchedRoutes();
  const { url, port, queued } = await setup(t, { routes });
  const body = JSON.stringify({ input: { features: [1, 2] }, label: 'late' });
  const req = httpRequest(`${url}/v1/services/iris/feedback`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.iris}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
  const answered = new Promise<{ status: number; text: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
  });
  const before = routes.lookups;
  req.write(body.slice(0, 10));
  await waitFor('the gateway checked the key', () => routes.lookups > before, 5000, 2);
  routes.set(service('iris', 4), [{ container: 'c-iris-4', port }]);
  req.end(body.slice(10));
  const res = await answered;
  t.is(res.status, 202, res.text);
  t.like((await queued())[0], { service: 'iris', revision: 4, models: [{ name: 'iris-model', version: 4 }], label: 'late' });
});

test('an item over MAX_FEEDBACK_ITEM_BYTES (a label near the body bound, for a revision with many models) is refused with 413 naming the limit', async (t) => {
  const routes = new RouteTable();
  const { url, port, queued } = await setup(t, { routes });
  const many = Array.from({ length: 64 }, (_, i) => ({ name: `m${String(i).padStart(2, '0')}-${'n'.repeat(56)}`, version: 1, digest: `sha256:${'1'.repeat(64)}` }));
  routes.set({ ...service('iris', 5), models: many }, [{ container: 'c-iris-5', port }]);
  const body = JSON.stringify({ input: { features: [1, 2] }, label: '' });
  const label = 'x'.repeat(FEEDBACK_MAX_BODY_BYTES - Buffer.byteLength(body) - 10);
  const res = await request(`${url}/v1/services/iris/feedback`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.iris}`, 'content-type': 'application/json' }, body: JSON.stringify({ input: { features: [1, 2] }, label }) });
  const json = (await res.body.json()) as { error: { code: string; message: string } };
  t.is(res.statusCode, 413);
  t.is(json.error.code, 'GATEWAY_E_TOO_LARGE');
  t.regex(json.error.message, /MAX_FEEDBACK_ITEM_BYTES \(\d+\)/);
  t.deepEqual(await queued(), []);
});
