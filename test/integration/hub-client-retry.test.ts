/**
 * The CLI's HubClient retries a POST whose connection failed before an answer, under the same
 * Idempotency-Key, re-sending an upload from the start; an answer (even an error) is never retried.
 * A tiny node:http server on 127.0.0.1 port 0 drops the first connections.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { HubClient } from '../../client/hub-client.js';
import { ErrorCodes, isEdgemlError } from '../../shared/errors.js';

const FAST = { forMs: 5_000, backoff: { initialMs: 1, maxMs: 5, factor: 2 } };

interface Seen {
  key: string | undefined;
  body: string;
}

/** Drops the connection of the first `drops` requests once their body is read, then answers 201. */
async function flakyHub(t: ExecutionContext, drops: number, answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}')) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = req.headers['idempotency-key'];
      seen.push({ key: typeof key === 'string' ? key : undefined, body: Buffer.concat(chunks).toString() });
      if (seen.length <= drops) req.socket.destroy();
      else answer(req, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

test('a POST whose connection drops before the answer is sent again with the same Idempotency-Key', async (t) => {
  const hub = await flakyHub(t, 2);
  const retries: string[] = [];
  const client = new HubClient({ baseUrl: hub.url, retry: FAST, onRetry: (line) => retries.push(line) });
  const answer = await client.json<{ ok: boolean }>('POST', '/api/v1/deployments', { body: { service: 'iris' } });
  t.deepEqual(answer, { ok: true });
  t.is(hub.seen.length, 3);
  t.regex(hub.seen[0]!.key ?? '', /^[0-9a-f-]{36}$/);
  t.true(hub.seen.every((s) => s.key === hub.seen[0]!.key && s.body === '{"service":"iris"}'));
  t.is(retries.length, 2);
  t.regex(retries[0]!, /trying again/);

  // Every new request has a key of its own.
  await client.json('POST', '/api/v1/deployments', { body: { service: 'wine' } });
  t.not(hub.seen[3]!.key, hub.seen[0]!.key);
});

test('an upload is re-sent from the start on a retry; a stream given as such is sent once', async (t) => {
  const hub = await flakyHub(t, 1);
  const client = new HubClient({ baseUrl: hub.url, retry: FAST });
  let opened = 0;
  const open = () => {
    opened += 1;
    return Readable.from([Buffer.from('model '), Buffer.from('bytes')]);
  };
  await client.upload('/api/v1/models/iris/versions', { filename: 'm.bin' }, 'application/octet-stream', open, 11);
  t.is(opened, 2);
  t.deepEqual(
    hub.seen.map((s) => s.body),
    ['model bytes', 'model bytes'],
  );
  t.is(hub.seen[0]!.key, hub.seen[1]!.key);

  const once = await flakyHub(t, 1);
  const plain = new HubClient({ baseUrl: once.url, retry: FAST });
  const err = await t.throwsAsync(plain.upload('/api/v1/models/iris/versions', {}, 'application/octet-stream', open(), 11));
  t.true(isEdgemlError(err, ErrorCodes.CLI_HUB_UNREACHABLE));
  t.is(once.seen.length, 1);
});

test('an answer is never retried, nor a GET; retries stop when their time is up', async (t) => {
  const failing = await flakyHub(t, 0, (_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"INTERNAL","message":"boom"}}'));
  const client = new HubClient({ baseUrl: failing.url, retry: FAST });
  await t.throwsAsync(client.json('POST', '/api/v1/deployments', { body: {} }), { message: /boom/ });
  t.is(failing.seen.length, 1);

  const dropping = await flakyHub(t, 1_000);
  const get = new HubClient({ baseUrl: dropping.url, retry: FAST });
  const err = await t.throwsAsync(get.json('GET', '/api/v1/deployments'));
  t.true(isEdgemlError(err, ErrorCodes.CLI_HUB_UNREACHABLE));
  t.is(dropping.seen.length, 1);

  const bounded = new HubClient({ baseUrl: dropping.url, retry: { forMs: 200, backoff: { initialMs: 20, maxMs: 40, factor: 2 } } });
  const gaveUp = await t.throwsAsync(bounded.json('POST', '/api/v1/deployments', { body: {} }));
  t.true(isEdgemlError(gaveUp, ErrorCodes.CLI_HUB_UNREACHABLE));
  // 200 ms of 10–40 ms waits: more than one try, far fewer than the server would take.
  t.true(dropping.seen.length > 2 && dropping.seen.length < 40, `${dropping.seen.length} requests`);
});
