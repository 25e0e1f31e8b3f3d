/**
 * The hub's HTTP server keeps its error contract, `{"error":{"code","message"}}`, even for what
 * Node's parser refuses before any route runs (a broken Content-Length, headers too large) and for
 * bodies of a type no route takes. Raw sockets against a real listening server, so that what goes
 * over the wire is exactly what a client reads.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Type } from '@sinclair/typebox';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { createHubFastify } from '../../hub/http/server.js';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: any;
}

async function startServer(t: ExecutionContext): Promise<{ port: number; received: unknown[] }> {
  const app = createHubFastify(pino({ level: 'silent' }));
  const received: unknown[] = [];
  app.post('/echo', { schema: { body: Type.Object({ x: Type.Integer() }) } }, async (req) => {
    received.push(req.body);
    return { ok: true };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  return { port: (app.server.address() as AddressInfo).port, received };
}

/** Sends `bytes` and reads until the server closes the connection (a test that hangs here failed); every answer is parsed. */
async function exchange(port: number, bytes: string): Promise<RawAnswer[]> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'connect');
  socket.write(bytes);
  await once(socket, 'close');
  const text = Buffer.concat(chunks).toString('latin1');
  const answers: RawAnswer[] = [];
  for (let rest = text; rest.length > 0; ) {
    const head = rest.indexOf('\r\n\r\n');
    if (head < 0) throw new Error(`not an HTTP answer: ${JSON.stringify(rest)}`);
    const [statusLine, ...lines] = rest.slice(0, head).split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length']);
    const body = rest.slice(head + 4, head + 4 + length);
    answers.push({ status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(body) });
    rest = rest.slice(head + 4 + length);
  }
  return answers;
}

function assertErrorShape(t: ExecutionContext, answer: RawAnswer | undefined, status: number, code: string): void {
  t.truthy(answer, 'an answer');
  t.is(answer!.status, status);
  t.regex(answer!.headers['content-type'] ?? '', /^application\/json/);
  t.deepEqual(Object.keys(answer!.body), ['error']);
  t.deepEqual(Object.keys(answer!.body.error).sort(), ['code', 'message']);
  t.is(answer!.body.error.code, code);
  t.true(typeof answer!.body.error.message === 'string' && answer!.body.error.message.length > 0);
}

test('a body longer than its Content-Length: the rest is refused in the error shape, and the connection closed', async (t) => {
  const { port, received } = await startServer(t);
  const body = '{"x":1}';
  const answers = await exchange(port, `POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}GARBAGE / HTTP/1.1\r\n\r\n`);
  t.is(answers.length, 2);
  t.is(answers[0]!.status, 200, 'the request its Content-Length described is served');
  assertErrorShape(t, answers[1], 400, 'HUB_E_INVALID_REQUEST');
  t.deepEqual(received, [{ x: 1 }]);
});

test('two Content-Lengths that disagree: 400 in the error shape, naming the problem', async (t) => {
  const { port, received } = await startServer(t);
  const [answer, ...more] = await exchange(port, 'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 7\r\ncontent-length: 9\r\n\r\n{"x":1}');
  assertErrorShape(t, answer, 400, 'HUB_E_INVALID_REQUEST');
  t.regex(answer!.body.error.message, /content-length/i);
  t.is(more.length, 0);
  t.deepEqual(received, []);
});

test('a client that stops halfway through its body and closes its side: refused and closed, not held', async (t) => {
  const { port, received } = await startServer(t);
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'connect');
  socket.end('POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"x":');
  await once(socket, 'close');
  t.regex(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 400 [^]*\{"error":\{"code":"HUB_E_INVALID_REQUEST","message":"malformed HTTP request: [^"]+"\}\}$/);
  t.deepEqual(received, []);
});

test('headers too large: 431 in the error shape', async (t) => {
  const { port } = await startServer(t);
  const [answer] = await exchange(port, `GET /echo HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
  assertErrorShape(t, answer, 431, 'HUB_E_HEADERS_TOO_LARGE');
  t.false(JSON.stringify(answer!.body).includes('aaaa'), 'the headers are not echoed');
});

test('a text/plain body is refused with 415, not taken as a string', async (t) => {
  const { port, received } = await startServer(t);
  const [answer] = await exchange(port, 'POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\n{"x":1}');
  assertErrorShape(t, answer, 415, 'HUB_E_UNSUPPORTED_MEDIA_TYPE');
  t.regex(answer!.body.error.message, /text\/plain/);
  t.deepEqual(received, []);
});

test('a JSON body nested deeper than any request of the API is refused in the error shape before a route sees it', async (t) => {
  const { port, received } = await startServer(t);
  const body = `{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
  const [answer] = await exchange(port, `POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
  assertErrorShape(t, answer, 400, 'HUB_E_INVALID_REQUEST');
  t.regex(answer!.body.error.message, /^body\.x(\[0\])+: is nested more than 128 levels deep$/);
  t.deepEqual(received, []);
});

test("paths fastify's router refuses (bad percent-encoding, a parameter over 100 characters) are answered in the error shape", async (t) => {
  const app = createHubFastify(pino({ level: 'silent' }));
  app.get('/things/:id', async () => ({ ok: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const { port } = app.server.address() as AddressInfo;
  const [badUrl] = await exchange(port, 'GET /things/%E0%A4%A HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  assertErrorShape(t, badUrl, 400, 'HUB_E_INVALID_REQUEST');
  const [longParam] = await exchange(port, `GET /things/${'a'.repeat(5000)} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
  assertErrorShape(t, longParam, 414, 'HUB_E_INVALID_REQUEST');
});
