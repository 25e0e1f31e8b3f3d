/**
 * Data capture in the scoring gateway (agent/gateway/server.ts) over real HTTP on 127.0.0.1, with a
 * node server in the container's place: what the route's capture settings sample, what the samples
 * hold (bodies as sent and answered, redacted, capped), what is never sampled (the gateway's own
 * refusals), and that capture never changes what the client gets.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { CAPTURE_KEEP_BYTES, REDACTED } from '../../agent/gateway/capture.js';
import { startGateway, type CaptureSink } from '../../agent/gateway/server.js';
import { RouteTable } from '../../agent/reconcile/routes.js';
import { systemClock } from '../../shared/clock.js';
import type { CaptureSample, CaptureSettings, DesiredService } from '../../shared/protocol.js';
import { hashSecret } from '../../shared/secrets.js';
import { assertStalls, writeBulk } from '../helpers/bulk-answer.js';
import { waitFor } from '../helpers/wait.js';

const KEY = 'the-service-key';
const ON: CaptureSettings = { rate: 1, maxBodyBytes: 4096, redact: [] };

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

/** The container: answers `{ "got": REQUEST, "password": "p4ss" }`, unless told otherwise. */
const answerWith: Handler = (_req, body, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ got: JSON.parse(body.toString()) as unknown, password: 'p4ss' }));
};

async function startUpstream(t: ExecutionContext, handle: Handler): Promise<number> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => handle(req, Buffer.concat(chunks), res));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

function service(capture: CaptureSettings | undefined, limits = { maxConcurrent: 4, maxQueue: 4 }): DesiredService {
  return {
    name: 'iris',
    revision: 3,
    image: `reg/iris@sha256:${'0'.repeat(64)}`,
    limits: { ...limits, memoryBytes: null, cpus: null },
    keyHash: hashSecret(KEY),
    models: [{ name: 'iris-linear', version: 2, digest: `sha256:${'1'.repeat(64)}` }],
    ...(capture ? { capture } : {}),
  };
}

async function setup(t: ExecutionContext, handle: Handler, capture: CaptureSettings | undefined, opts: { sink?: CaptureSink; random?: () => number; limits?: { maxConcurrent: number; maxQueue: number } } = {}) {
  const port = await startUpstream(t, handle);
  const routes = new RouteTable();
  routes.set(service(capture, opts.limits), [{ container: `c${port}`, port }]);
  const samples: CaptureSample[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const gateway = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    routes,
    desired: () => ['iris'],
    clock: systemClock,
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) }),
    capture: opts.sink ?? { add: (s) => void samples.push(s) },
    random: opts.random,
  });
  t.teardown(() => gateway.close());
  const client = new Agent();
  t.teardown(() => client.destroy());
  /** The answer's head; its body is read at the caller's pace. */
  const post = (body: string, key = KEY, headers: Record<string, string> = {}) =>
    request(`${gateway.url}/v1/services/iris/score`, { dispatcher: client, method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers }, body });
  const score = async (body: string, key = KEY, headers: Record<string, string> = {}) => {
    const res = await post(body, key, headers);
    return { status: res.statusCode, text: await res.body.text(), requestId: res.headers['x-request-id'] };
  };
  /** The gateway records a sample once the answer is out, which may be just after the client read it. */
  const captured = (n: number) => waitFor(`${n} capture samples`, () => samples.length >= n && samples, 5000, 5);
  return { routes, port, samples, logs, post, score, captured };
}

test('at rate 1 every request is captured with its answer, as sent and as answered', async (t) => {
  const { captured, score } = await setup(t, answerWith, ON);
  const before = Date.now();
  const answers: Array<{ status: number; text: string }> = [];
  for (let i = 0; i < 20; i++) answers.push(await score(JSON.stringify({ features: [i, 1.5], id: `r${i}` })));
  const samples = await captured(20);
  t.is(samples.length, 20);
  samples.forEach((s, i) => {
    t.like(s, { service: 'iris', revision: 3, models: [{ name: 'iris-linear', version: 2 }], status: 200 });
    t.deepEqual(s.request, { json: { features: [i, 1.5], id: `r${i}` }, bytes: JSON.stringify({ features: [i, 1.5], id: `r${i}` }).length, truncated: false });
    t.deepEqual(s.response, { json: JSON.parse(answers[i]!.text), bytes: answers[i]!.text.length, truncated: false });
    t.true(Date.parse(s.ts) >= before - 1 && Date.parse(s.ts) <= Date.now());
    t.true(s.latencyMs >= 0);
  });
});

test("a sample carries its request's id: the client's own, or the one the gateway made and answered with", async (t) => {
  const { captured, score } = await setup(t, answerWith, ON);
  const own = await score('{"a":1}', KEY, { 'x-request-id': 'client-7' });
  const made = await score('{"a":2}');
  const samples = await captured(2);
  t.is(own.requestId, 'client-7');
  t.truthy(made.requestId);
  t.deepEqual(
    samples.map((s) => [(s.request.json as { a: number }).a, s.requestId]),
    [
      [1, 'client-7'],
      [2, made.requestId],
    ],
  );
});

test('at rate 0, or without capture settings, nothing is captured; a rate in between follows random()', async (t) => {
  const off = await setup(t, answerWith, { ...ON, rate: 0 });
  const none = await setup(t, answerWith, undefined);
  for (let i = 0; i < 5; i++) {
    t.is((await off.score('{"a":1}')).status, 200);
    t.is((await none.score('{"a":1}')).status, 200);
  }
  t.is(off.samples.length + none.samples.length, 0);

  const draws = [0.1, 0.9, 0.2, 0.8];
  const half = await setup(t, answerWith, { ...ON, rate: 0.5 }, { random: () => draws.shift()! });
  for (let i = 0; i < 4; i++) await half.score(JSON.stringify({ i }));
  await half.captured(2);
  t.deepEqual(half.samples.map((s) => (s.request.json as { i: number }).i), [0, 2]);
});

test('bodies above the cap are cut and marked; the client still gets all of it', async (t) => {
  const big = 'z'.repeat(10_000);
  const { captured, score } = await setup(t, answerWith, { ...ON, maxBodyBytes: 100 });
  const answer = await score(JSON.stringify({ big }));
  const samples = await captured(1);
  t.is(answer.text.length, JSON.stringify({ got: { big }, password: 'p4ss' }).length);
  const [s] = samples;
  t.deepEqual(s?.request, { text: `{"big":"${big}`.slice(0, 100), bytes: 10_010, truncated: true });
  t.deepEqual(s?.response, { text: `{"got":{"big":"${big}`.slice(0, 100), bytes: answer.text.length, truncated: true });
});

test('named fields are redacted in the request and the answer', async (t) => {
  const { captured, score } = await setup(t, answerWith, { ...ON, redact: ['password', 'ssn'] });
  const answer = await score(JSON.stringify({ user: { ssn: '123-45', name: 'ann' }, rows: [{ password: 'x' }] }));
  const samples = await captured(1);
  t.true(answer.text.includes('p4ss'), 'the client gets the answer as it was');
  const [s] = samples;
  t.deepEqual(s?.request.json, { user: { ssn: REDACTED, name: 'ann' }, rows: [{ password: REDACTED }] });
  t.deepEqual(s?.response.json, { got: { user: { ssn: REDACTED, name: 'ann' }, rows: [{ password: REDACTED }] }, password: REDACTED });
});

test('an answer larger than the gateway keeps passes through whole; with a redact list its sample is withheld', async (t) => {
  const size = CAPTURE_KEEP_BYTES + 512 * 1024;
  const { captured, score } = await setup(
    t,
    (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ password: 'p'.repeat(size) }));
    },
    { ...ON, redact: ['password'] },
  );
  const answer = await score('{}');
  t.is(answer.text.length, size + 15);
  const samples = await captured(1);
  t.deepEqual(samples[0]?.response, { bytes: size + 15, truncated: true, withheld: true });
  t.deepEqual(samples[0]?.request, { json: {}, bytes: 2, truncated: false });
});

test("a sampled answer still goes out at the client's pace, and its sample counts every byte", async (t) => {
  const total = 32 * 1024 * 1024;
  let written = () => 0;
  const { captured, post } = await setup(
    t,
    (_req, _body, res) => {
      written = writeBulk(res, total);
    },
    ON,
  );
  const answer = await post('{}');
  await assertStalls(t, () => written(), total);
  let read = 0;
  for await (const chunk of answer.body) read += (chunk as Buffer).length;
  t.is(read, total);
  const [sample] = await captured(1);
  t.deepEqual(sample?.response, { text: 'a'.repeat(ON.maxBodyBytes), bytes: total, truncated: true });
});

test("the gateway's own refusals (401, 429) are not captured; a container's 400 is", async (t) => {
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const { captured, score } = await setup(
    t,
    (_req, body, res) => {
      void held.then(() => {
        res.writeHead(body.length > 2 ? 200 : 400, { 'content-type': 'application/json' });
        res.end(body.length > 2 ? '{"ok":true}' : '{"error":"features is required"}');
      });
    },
    ON,
    { limits: { maxConcurrent: 1, maxQueue: 0 } },
  );
  t.is((await score('{"a":1}', 'wrong')).status, 401);
  const first = score('{"a":1}');
  await waitFor('the first request in flight', async () => (await score('{"a":2}')).status === 429, 5000, 10);
  release();
  t.is((await first).status, 200);
  t.is((await score('{}')).status, 400);
  const samples = await captured(2);
  t.deepEqual(
    samples.map((s) => [s.status, s.request.json]),
    [
      [200, { a: 1 }],
      [400, {}],
    ],
  );
  t.deepEqual(samples[1]?.response.json, { error: 'features is required' });
});

test('a changed capture setting on the route applies to the next request, with no new container', async (t) => {
  const { routes, port, captured, score } = await setup(t, answerWith, undefined);
  await score('{"n":1}');
  routes.set(service({ ...ON, redact: ['n'] }), [{ container: `c${port}`, port }]);
  await score('{"n":2}');
  routes.set(service({ ...ON, rate: 0 }), [{ container: `c${port}`, port }]);
  await score('{"n":3}');
  routes.set(service(ON), [{ container: `c${port}`, port }]);
  await score('{"n":4}');
  const samples = await captured(2);
  t.deepEqual(
    samples.map((s) => s.request.json),
    [{ n: REDACTED }, { n: 4 }],
  );
});

test('a capture sink that fails breaks nothing: the answer is whole, the error logged without the bodies', async (t) => {
  const { score, logs } = await setup(t, answerWith, ON, {
    sink: {
      add: () => {
        throw new Error('full');
      },
    },
  });
  const answer = await score('{"secret":"s3cr3t"}');
  t.is(answer.status, 200);
  t.deepEqual(JSON.parse(answer.text), { got: { secret: 's3cr3t' }, password: 'p4ss' });
  const logged = await waitFor('the error logged', () => logs.find((l) => l.msg === 'a capture sample was dropped'), 5000, 5);
  t.like(logged, { service: 'iris' });
  t.false(JSON.stringify(logs).includes('s3cr3t'));
});
