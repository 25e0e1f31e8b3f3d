/**
 * The CLI's HubClient (client/hub-client.ts) against a FakeHub: a tiny node:http server on 127.0.0.1
 * port 0 that answers canned responses. The real hub routes are tested elsewhere; this checks the
 * client's side: request shape, error mapping, streaming both ways, early answers to uploads; over
 * HTTPS (a node:https FakeHub with certificates from a throwaway CA), the trust options and the one
 * line a TLS failure becomes; and the key and CA settings of client commands.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { clientAction, withClientOptions, type CliIo, type ClientContext } from '../../cli/commands/client-command.js';
import { apiPath, HubClient } from '../../client/hub-client.js';
import { tlsError } from '../../client/tls.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { issueServerCert, makeCa, type ServerCert } from '../helpers/tls-certs.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Starts a FakeHub for one test; closed (with its connections) when the test ends. */
async function startFakeHub(t: ExecutionContext, handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      res.destroy(err as Error);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function rejection(t: ExecutionContext, promise: Promise<unknown>): Promise<EdgemlError> {
  const err = await t.throwsAsync(promise, { instanceOf: EdgemlError });
  return err!;
}

/** `total` bytes in 64 KiB chunks, generated as they are read. */
function generated(total: number): Readable & { produced: () => number } {
  let produced = 0;
  const stream = new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      const chunk = Buffer.alloc(Math.min(65_536, total - produced), produced % 251);
      produced += chunk.length;
      this.push(chunk);
    },
  });
  return Object.assign(stream, { produced: () => produced });
}

test('apiPath encodes every segment', (t) => {
  t.is(apiPath('models', 'resnet50', 'versions', '@production', 'content'), '/api/v1/models/resnet50/versions/%40production/content');
  t.is(apiPath('apikeys', 'a/b'), '/api/v1/apikeys/a%2Fb');
});

test('json sends method, bearer key, JSON body and repeated query values', async (t) => {
  let seen: { method?: string; url?: string; auth?: string; type?: string; body?: string } = {};
  const url = await startFakeHub(t, async (req, res) => {
    seen = { method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body: (await readBody(req)).toString() };
    sendJson(res, 200, { ok: true });
  });
  const client = new HubClient({ baseUrl: `${url}/`, apiKey: 'k-123' });
  t.deepEqual(await client.json('PUT', apiPath('models', 'm', 'aliases', 'prod'), { query: { tag: ['a=1', 'b=2'], name: 'm', skip: undefined }, body: { version: 2 } }), { ok: true });
  t.is(seen.method, 'PUT');
  t.is(seen.url, '/api/v1/models/m/aliases/prod?tag=a%3D1&tag=b%3D2&name=m');
  t.is(seen.auth, 'Bearer k-123');
  t.is(seen.type, 'application/json');
  t.is(seen.body, '{"version":2}');
});

test('call: an operation by its operationId, with its method, encoded path parameters, query and JSON body', async (t) => {
  const seen: Array<{ method?: string; url?: string; body: string }> = [];
  const url = await startFakeHub(t, async (req, res) => {
    seen.push({ method: req.method, url: req.url, body: (await readBody(req)).toString() });
    if (req.method === 'DELETE') return void res.writeHead(204).end();
    if (req.url?.startsWith('/api/v1/captures/')) return void res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end('{"a":1}\n');
    sendJson(res, 200, { ok: true });
  });
  const client = new HubClient({ baseUrl: url, apiKey: 'k' });
  t.deepEqual(await client.call('updateDeviceLabels', { params: { id: 'gw 1' }, body: { set: { site: 'lab' } } }), { ok: true } as never);
  t.deepEqual(await client.call('listDevices', { query: { label: ['site=lab', 'ring=a'], status: 'online' } }), { ok: true } as never);
  t.is(await client.call('deleteModelVersion', { params: { name: 'iris', ref: 3 } }), undefined);
  const download = await client.call('exportCaptures', { params: { service: 'iris' }, query: { since: '1h' } });
  let text = '';
  for await (const chunk of download.body) text += String(chunk);
  t.is(text, '{"a":1}\n');
  t.deepEqual(seen, [
    { method: 'PATCH', url: '/api/v1/devices/gw%201/labels', body: '{"set":{"site":"lab"}}' },
    { method: 'GET', url: '/api/v1/devices?label=site%3Dlab&label=ring%3Da&status=online', body: '' },
    { method: 'DELETE', url: '/api/v1/models/iris/versions/3', body: '' },
    { method: 'GET', url: '/api/v1/captures/iris?since=1h', body: '' },
  ]);
});

test('no key, no authorization header; 204 resolves to undefined', async (t) => {
  const seen: { auth?: string | undefined } = {};
  const url = await startFakeHub(t, (req, res) => {
    seen.auth = req.headers.authorization;
    res.writeHead(204).end();
  });
  t.is(await new HubClient({ baseUrl: url }).json('DELETE', apiPath('models', 'm', 'aliases', 'prod')), undefined);
  t.true('auth' in seen);
  t.is(seen.auth, undefined);
});

test("a hub error becomes an EdgemlError with the hub's code, message and status", async (t) => {
  const url = await startFakeHub(t, (_req, res) => sendJson(res, 409, { error: { code: 'HUB_E_CONFLICT', message: 'model m:3 is still referenced by alias production' } }));
  const err = await rejection(t, new HubClient({ baseUrl: url, apiKey: 'k' }).json('DELETE', apiPath('models', 'm', 'versions', 3)));
  t.is(err.code, ErrorCodes.HUB_CONFLICT);
  t.is(err.message, 'model m:3 is still referenced by alias production');
  t.is(err.httpStatus, 409);
  t.deepEqual(err.details, { status: 409 });
  t.false(err.retryable);
});

test('a non-JSON error still says what happened, with the status', async (t) => {
  const url = await startFakeHub(t, (_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end(`<html>\n  <body>upstream   down</body>${'x'.repeat(1000)}</html>`);
  });
  const err = await rejection(t, new HubClient({ baseUrl: url }).json('GET', apiPath('models')));
  t.is(err.code, ErrorCodes.INTERNAL);
  t.regex(err.message, new RegExp(`^the hub at ${url} answered 502 Bad Gateway: <html> <body>upstream down</body>x+$`));
  t.true(err.message.length < 400, 'a long body is cut');
  t.is(err.httpStatus, 502);
  t.true(err.retryable);

  const url404 = await startFakeHub(t, (_req, res) => void res.writeHead(404).end());
  const notFound = await rejection(t, new HubClient({ baseUrl: url404 }).json('GET', apiPath('models', 'm')));
  t.is(notFound.code, ErrorCodes.HUB_NOT_FOUND);
  t.is(notFound.message, `the hub at ${url404} answered 404 Not Found`);
});

test('a 401 without a key says how to give one; with a key it does not, and never shows the key', async (t) => {
  const url = await startFakeHub(t, (_req, res) => sendJson(res, 401, { error: { code: 'HUB_E_UNAUTHENTICATED', message: 'this route needs an API key' } }));
  const without = await rejection(t, new HubClient({ baseUrl: url }).json('GET', apiPath('models')));
  t.is(without.code, ErrorCodes.HUB_UNAUTHENTICATED);
  t.is(without.message, "this route needs an API key (no API key: pass --api-key-file FILE or set EDGEML_API_KEY_FILE or EDGEML_API_KEY; the hub's admin key is in DATA/admin.key)");
  const withKey = await rejection(t, new HubClient({ baseUrl: url, apiKey: 'emk_very_secret' }).json('GET', apiPath('models')));
  t.is(withKey.message, 'this route needs an API key');
  t.false(JSON.stringify({ m: withKey.message, d: withKey.details }).includes('emk_very_secret'));
});

test('a 2xx answer that is not JSON is an error, not a crash', async (t) => {
  const url = await startFakeHub(t, (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'));
  const err = await rejection(t, new HubClient({ baseUrl: url }).json('GET', apiPath('models')));
  t.is(err.code, ErrorCodes.INTERNAL);
  t.regex(err.message, /not JSON \(status 200\)/);
});

test('connection refused is CLI_HUB_UNREACHABLE with a hint', async (t) => {
  // A port that was just free: listen, note it, close.
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const url = `http://127.0.0.1:${port}`;
  const err = await rejection(t, new HubClient({ baseUrl: url }).json('GET', apiPath('models')));
  t.is(err.code, ErrorCodes.CLI_HUB_UNREACHABLE);
  t.is(err.message, `cannot reach the hub at ${url}: ECONNREFUSED (is \`edgeml hub start\` running? set --hub or EDGEML_HUB)`);
  t.true(err.retryable);
});

test('a connection reset before any answer is CLI_HUB_UNREACHABLE', async (t) => {
  const url = await startFakeHub(t, (req) => {
    req.socket.resetAndDestroy();
  });
  const err = await rejection(t, new HubClient({ baseUrl: url }).json('GET', apiPath('models')));
  t.is(err.code, ErrorCodes.CLI_HUB_UNREACHABLE);
  t.regex(err.message, /^cannot reach the hub at .*: (ECONNRESET|UND_ERR_SOCKET)/);
});

test('a DELETE is retried only when asked, under one Idempotency-Key; by default a dropped DELETE fails once', async (t) => {
  const keys: Array<string | undefined> = [];
  const url = await startFakeHub(t, (req, res) => {
    keys.push(req.headers['idempotency-key'] as string | undefined);
    if (keys.length % 2 === 1) return void req.socket.resetAndDestroy();
    sendJson(res, 200, { deleted: true });
  });
  const fast = { forMs: 5000, backoff: { initialMs: 1, maxMs: 1, factor: 1 } };
  const client = new HubClient({ baseUrl: url, retry: fast });
  t.deepEqual(await client.json('DELETE', apiPath('deployments', 'iris'), { retry: true }), { deleted: true });
  t.is(keys.length, 2);
  t.truthy(keys[0]);
  t.is(keys[1], keys[0], 'the retry carries the same key: the hub answers the delete it did');

  keys.length = 0;
  t.deepEqual(await client.call('deleteDeployment', { params: { service: 'iris' } }, { retry: true }), { deleted: true } as never);
  t.true(keys.length === 2 && keys[0] !== undefined && keys[1] === keys[0], 'call(…, { retry: true }) retries as json(…, { retry: true }) does');

  keys.length = 0;
  const err = await rejection(t, client.json('DELETE', apiPath('models', 'm', 'aliases', 'prod')));
  t.is(err.code, ErrorCodes.CLI_HUB_UNREACHABLE);
  t.deepEqual(keys, [undefined], 'sent once, with no key');
});

test('upload streams the body with content type, length and query, and reports progress', async (t) => {
  const total = 1_000_000;
  const url = await startFakeHub(t, async (req, res) => {
    const body = await readBody(req);
    sendJson(res, 201, {
      url: req.url,
      type: req.headers['content-type'],
      length: req.headers['content-length'],
      received: body.length,
      digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
    });
  });
  const source = generated(total);
  const progress: number[] = [];
  const answer = await new HubClient({ baseUrl: url, apiKey: 'k' }).upload<Record<string, unknown>>(
    apiPath('models', 'm', 'versions'),
    { filename: 'model.onnx', tag: ['a=1'] },
    'application/octet-stream',
    source,
    total,
    (bytes) => progress.push(bytes),
  );
  t.is(answer.url, '/api/v1/models/m/versions?filename=model.onnx&tag=a%3D1');
  t.is(answer.type, 'application/octet-stream');
  t.is(answer.length, String(total));
  t.is(answer.received, total);
  t.is(progress.at(-1), total);
  t.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress only grows');
});

test("the hub's early answer to an upload wins over the broken pipe, and reading stops", async (t) => {
  const url = await startFakeHub(t, async (req, res) => {
    // Read a little, refuse, and hang up on the rest, as a hub enforcing a size limit may.
    const socket = req.socket;
    await once(req, 'data');
    sendJson(res, 413, { error: { code: 'HUB_E_PAYLOAD_TOO_LARGE', message: 'the upload is over the 1 MB limit' } }, { connection: 'close' });
    res.on('finish', () => socket.destroy());
  });
  const total = 512 * 1024 * 1024;
  const source = generated(total);
  const err = await rejection(t, new HubClient({ baseUrl: url }).upload(apiPath('models', 'm', 'versions'), {}, 'application/x-tar', source, total));
  t.is(err.code, ErrorCodes.HUB_PAYLOAD_TOO_LARGE);
  t.is(err.message, 'the upload is over the 1 MB limit');
  t.true(source.destroyed, 'the source is closed');
  t.true(source.produced() < total / 4, `stopped reading after ${source.produced()} bytes`);
});

test('an error while producing the upload body is the error the caller sees', async (t) => {
  const url = await startFakeHub(t, async (req, res) => {
    await readBody(req).catch(() => undefined);
    sendJson(res, 201, {});
  });
  const local = new EdgemlError(ErrorCodes.ARCHIVE_INVALID, 'models/x: a symlink pointing outside the directory');
  const source = Readable.from(
    (async function* () {
      yield Buffer.alloc(1024);
      throw local;
    })(),
  );
  const err = await rejection(t, new HubClient({ baseUrl: url }).upload(apiPath('models', 'm', 'versions'), {}, 'application/x-tar', source, undefined));
  t.is(err, local);
});

test('download streams the bytes and reports the length', async (t) => {
  const bytes = Buffer.alloc(300_000, 7);
  const url = await startFakeHub(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    res.end(bytes);
  });
  const d = await new HubClient({ baseUrl: url }).download(apiPath('models', 'm', 'versions', 1, 'content'));
  t.is(d.length, bytes.length);
  t.is(d.headers['content-type'], 'application/octet-stream');
  const chunks: Buffer[] = [];
  for await (const chunk of d.body) chunks.push(chunk as Buffer);
  t.true(Buffer.concat(chunks).equals(bytes));
});

test('download of a missing version is the hub error, before any byte', async (t) => {
  const url = await startFakeHub(t, (_req, res) => sendJson(res, 404, { error: { code: 'HUB_E_MODEL_NOT_FOUND', message: 'model m:9 not found' } }));
  const err = await rejection(t, new HubClient({ baseUrl: url }).download(apiPath('models', 'm', 'versions', 9, 'content')));
  t.is(err.code, ErrorCodes.HUB_MODEL_NOT_FOUND);
});

test('a connection lost mid-download fails the body stream with CLI_HUB_UNREACHABLE', async (t) => {
  const url = await startFakeHub(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1_000_000 });
    res.write(Buffer.alloc(10_000), () => req.socket.destroy());
  });
  const d = await new HubClient({ baseUrl: url }).download(apiPath('models', 'm', 'versions', 1, 'content'));
  const err = await t.throwsAsync(
    (async () => {
      for await (const _ of d.body);
    })(),
    { instanceOf: EdgemlError },
  );
  t.is(err?.code, ErrorCodes.CLI_HUB_UNREACHABLE);
  t.regex(err?.message ?? '', /^lost the connection to the hub at http:\/\/127\.0\.0\.1:\d+: /);
});

test('the abort signal cancels a request with its reason, unmapped', async (t) => {
  const url = await startFakeHub(t, () => {
    // never answers
  });
  const controller = new AbortController();
  const reason = new Error('interrupted');
  const pending = new HubClient({ baseUrl: url, signal: controller.signal }).json('GET', apiPath('models'));
  setTimeout(() => controller.abort(reason), 50);
  t.is(await t.throwsAsync(pending), reason);
});

/** An HTTPS FakeHub answering `{"items":[]}`; its URL uses `host` (the certificate may not name it). */
async function startTlsHub(t: ExecutionContext, cert: ServerCert, host = '127.0.0.1'): Promise<string> {
  const server = createHttpsServer({ cert: cert.cert, key: cert.key }, (_req, res) => sendJson(res, 200, { items: [] }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `https://${host}:${(server.address() as AddressInfo).port}`;
}

async function tlsSetup() {
  const ca = await makeCa('edgeml test hub CA');
  const other = await makeCa('some other CA');
  return { ca, other, good: await issueServerCert(ca, { ip: ['127.0.0.1'], dns: ['localhost'] }) };
}

const FAST_FAIL = { forMs: 0, backoff: { initialMs: 1, maxMs: 1, factor: 1 } };

test('https: the hub is trusted with its CA, and only with it', async (t) => {
  const { ca, other, good } = await tlsSetup();
  const url = await startTlsHub(t, good);
  t.deepEqual(await new HubClient({ baseUrl: url, ca: ca.pem }).json('GET', apiPath('models')), { items: [] });
  // A POST (retried on connection failures) fails at once: a certificate does not get better by retrying.
  for (const client of [new HubClient({ baseUrl: url }), new HubClient({ baseUrl: url, ca: other.pem, retry: { forMs: 60_000, backoff: FAST_FAIL.backoff } })]) {
    const err = await rejection(t, client.json('POST', apiPath('models'), { body: {} }));
    t.is(err.code, ErrorCodes.CLI_TLS);
    t.regex(err.message, new RegExp(`^cannot verify the hub's certificate at ${url}: unable to verify the first certificate; pass the hub's CA with --ca FILE or EDGEML_CA \\(\`edgeml hub ca\` prints it\\)$`));
    t.truthy(err.cause, 'the TLS error is kept as the cause');
  }
});

test('https: a certificate for other names, an expired one, and HTTP and HTTPS mixed up are one clear line each', async (t) => {
  const { ca, good } = await tlsSetup();
  const otherName = await startTlsHub(t, await issueServerCert(ca, { dns: ['hub.example'] }));
  const mismatch = await rejection(t, new HubClient({ baseUrl: otherName, ca: ca.pem }).json('GET', apiPath('models')));
  t.is(mismatch.code, ErrorCodes.CLI_TLS);
  t.is(mismatch.message, `the hub's certificate at ${otherName} is not for 127.0.0.1 (it names DNS:hub.example); use a name the certificate carries in --hub, or start the hub with --tls-san NAME`);

  const expiredUrl = await startTlsHub(t, await issueServerCert(ca, { ip: ['127.0.0.1'] }, { expired: true }));
  const expired = await rejection(t, new HubClient({ baseUrl: expiredUrl, ca: ca.pem }).json('GET', apiPath('models')));
  t.is(expired.code, ErrorCodes.CLI_TLS);
  t.is(expired.message, `the hub's certificate at ${expiredUrl} has expired (check the clocks of this machine and of the hub)`);

  const tlsUrl = await startTlsHub(t, good);
  const plainUrl = tlsUrl.replace('https:', 'http:');
  const plainToTls = await rejection(t, new HubClient({ baseUrl: plainUrl, retry: FAST_FAIL }).json('POST', apiPath('models'), { body: {} }));
  t.is(plainToTls.code, ErrorCodes.CLI_TLS);
  t.is(plainToTls.message, `the hub at ${plainUrl} speaks HTTPS: use ${tlsUrl}`);

  const plainHub = await startFakeHub(t, (_req, res) => sendJson(res, 200, {}));
  const httpsUrl = plainHub.replace('http:', 'https:');
  const tlsToPlain = await rejection(t, new HubClient({ baseUrl: httpsUrl, ca: ca.pem }).json('GET', apiPath('models')));
  t.is(tlsToPlain.code, ErrorCodes.CLI_TLS);
  t.is(tlsToPlain.message, `the hub at ${httpsUrl} does not speak HTTPS (is it plain HTTP? then use http://)`);
  for (const err of [mismatch, expired, plainToTls, tlsToPlain]) t.false(/error:|SSL routines|openssl/i.test(err.message), err.message);
});

/** Runs one client command through clientAction with `argv` and `env`; resolves to its context or the error. */
async function clientContext(
  argv: string[],
  env: Record<string, string> = {},
  opts: { stderr?: NodeJS.WriteStream; signal?: AbortSignal } = {},
): Promise<ClientContext> {
  let seen: ClientContext | undefined;
  const signal = opts.signal ?? new AbortController().signal;
  const io = { env, stdout: process.stdout, stderr: opts.stderr ?? process.stderr, cwd: process.cwd(), interruptSignal: () => signal } as CliIo;
  const program = new Command('edgeml').exitOverride().configureOutput({ writeErr: () => undefined });
  withClientOptions(program.command('probe').action(clientAction(io, async (ctx) => void (seen = ctx))));
  await program.parseAsync(['node', 'edgeml', 'probe', ...argv]);
  return seen!;
}

async function scratch(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-cli-trust-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('--api-key-file: the trimmed key goes as the bearer; unreadable, empty or unusable files are named, the key never shown', async (t) => {
  let auth: string | undefined;
  const url = await startFakeHub(t, (req, res) => {
    auth = req.headers.authorization;
    sendJson(res, 200, { items: [] });
  });
  const dir = await scratch(t);
  const keyFile = join(dir, 'key');
  await writeFile(keyFile, 'emk_from_the_file\n');
  await (await clientContext(['--hub', url, '--api-key-file', keyFile])).client.json('GET', apiPath('models'));
  t.is(auth, 'Bearer emk_from_the_file');
  await (await clientContext(['--hub', url], { EDGEML_API_KEY_FILE: keyFile })).client.json('GET', apiPath('models'));
  t.is(auth, 'Bearer emk_from_the_file', 'EDGEML_API_KEY_FILE');
  await (await clientContext(['--hub', url, '--api-key-file', keyFile], { EDGEML_API_KEY: 'emk_from_env' })).client.json('GET', apiPath('models'));
  t.is(auth, 'Bearer emk_from_the_file', 'the flag beats the environment');
  const dir2 = await scratch(t);
  await writeFile(join(dir2, 'client.json'), JSON.stringify({ apiKeyFile: keyFile }));
  await (await clientContext(['--hub', url, '--config', join(dir2, 'client.json')], { EDGEML_API_KEY: 'emk_from_env' })).client.json('GET', apiPath('models'));
  t.is(auth, 'Bearer emk_from_env', 'the environment beats the config file');

  const missing = await t.throwsAsync(clientContext(['--hub', url, '--api-key-file', join(dir, 'nope')]), { instanceOf: EdgemlError });
  t.is(missing.code, ErrorCodes.CLI_INPUT_INVALID);
  t.is(missing.message, `--api-key-file ${join(dir, 'nope')}: no such file or directory`);
  const empty = join(dir, 'empty');
  await writeFile(empty, '  \n');
  const emptyErr = await t.throwsAsync(clientContext(['--hub', url], { EDGEML_API_KEY_FILE: empty }), { instanceOf: EdgemlError });
  t.is(emptyErr.message, `EDGEML_API_KEY_FILE ${empty}: the file is empty`);
  const spaced = join(dir, 'spaced');
  await writeFile(spaced, 'emk_secret part two\n');
  const spacedErr = await t.throwsAsync(clientContext(['--hub', url, '--api-key-file', spaced]), { instanceOf: EdgemlError });
  t.is(spacedErr.code, ErrorCodes.CLI_INPUT_INVALID);
  t.false(spacedErr.message.includes('emk_secret'), spacedErr.message);
  const inline = await t.throwsAsync(clientContext(['--hub', url, '--api-key', 'emk_bad\nsecret']), { instanceOf: EdgemlError });
  t.false(inline.message.includes('emk_bad'), inline.message);

  const both = await t.throwsAsync(clientContext(['--hub', url, '--api-key', 'k', '--api-key-file', keyFile]));
  t.is((both as { code?: string }).code, 'commander.conflictingOption', 'both flags: a usage error');
  const bothEnv = await t.throwsAsync(clientContext(['--hub', url], { EDGEML_API_KEY: 'k', EDGEML_API_KEY_FILE: keyFile }), { instanceOf: EdgemlError });
  t.is(bothEnv.code, ErrorCodes.CLI_INPUT_INVALID);
  t.notRegex(bothEnv.message, /emk_|\bk\b:/);
});

test('--ca / EDGEML_CA: the CA file is read and checked before any request; the context carries it', async (t) => {
  const { ca, good } = await tlsSetup();
  const url = await startTlsHub(t, good);
  const dir = await scratch(t);
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.pem);
  const ctx = await clientContext(['--hub', url], { EDGEML_CA: caFile });
  t.is(ctx.ca, ca.pem);
  t.deepEqual(await ctx.client.json('GET', apiPath('models')), { items: [] });
  const notPem = join(dir, 'key.pem');
  await writeFile(notPem, good.key);
  const bad = await t.throwsAsync(clientContext(['--hub', url, '--ca', notPem]), { instanceOf: EdgemlError });
  t.is(bad.code, ErrorCodes.CLI_INPUT_INVALID);
  t.regex(bad.message, new RegExp(`^--ca ${notPem}: not a PEM certificate`));
  t.false(bad.message.includes('PRIVATE KEY'));
});

/** A stderr that keeps what is written to it. */
function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = new Writable({ write: (chunk, _enc, done) => void ((text += String(chunk)), done()) }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

test('--api-key works but warns once on stderr; --api-key-file and EDGEML_API_KEY do not', async (t) => {
  let auth: string | undefined;
  const url = await startFakeHub(t, (req, res) => {
    auth = req.headers.authorization;
    sendJson(res, 200, { items: [] });
  });
  const flagged = capture();
  await (await clientContext(['--hub', url, '--api-key', 'emk_on_the_line', '--json'], {}, { stderr: flagged.stream })).client.json('GET', apiPath('models'));
  t.is(auth, 'Bearer emk_on_the_line');
  t.is(flagged.text(), 'edgeml: warning: --api-key shows in the process list; prefer --api-key-file or EDGEML_API_KEY\n');
  const fromEnv = capture();
  await (await clientContext(['--hub', url], { EDGEML_API_KEY: 'emk_env' }, { stderr: fromEnv.stream })).client.json('GET', apiPath('models'));
  t.is(fromEnv.text(), '');
});

// TEST-NET-1: no machine answers there, so a request that got as far as connecting would not fail at once with this code.
const REMOTE_HUB = 'http://192.0.2.10:8080';

test('an API key is never sent to a plain-http hub off loopback, unless --allow-insecure-http', async (t) => {
  const refused = await rejection(t, new HubClient({ baseUrl: REMOTE_HUB, apiKey: 'emk_secret', retry: FAST_FAIL }).json('POST', apiPath('models'), { body: {} }));
  t.is(refused.code, ErrorCodes.CLI_INSECURE_HUB);
  t.is(
    refused.message,
    `the hub at ${REMOTE_HUB} is plain http on a non-loopback address: the API key would cross the network unencrypted; use https:// with --ca FILE (\`edgeml hub ca\` prints it), or pass --allow-insecure-http`,
  );
  for (const hub of ['http://hub.example:8080', 'http://[2001:db8::1]:8080']) {
    const err = await rejection(t, new HubClient({ baseUrl: hub, apiKey: 'emk_secret' }).json('GET', apiPath('models')));
    t.is(err.code, ErrorCodes.CLI_INSECURE_HUB, hub);
  }
  const dir = await scratch(t);
  const keyFile = join(dir, 'key');
  await writeFile(keyFile, 'emk_secret\n');
  const viaCli = await rejection(t, (await clientContext(['--hub', REMOTE_HUB, '--api-key-file', keyFile])).client.json('GET', apiPath('models')));
  t.is(viaCli.code, ErrorCodes.CLI_INSECURE_HUB);

  // Allowed, or with no key to protect, the request is made: it fails for want of a hub (unreachable, or cut short by the signal).
  const allowed = await clientContext(['--hub', REMOTE_HUB, '--api-key-file', keyFile, '--allow-insecure-http'], {}, { signal: AbortSignal.timeout(500) });
  const tried = [
    await t.throwsAsync(allowed.client.json('GET', apiPath('models'))),
    await t.throwsAsync(new HubClient({ baseUrl: REMOTE_HUB, signal: AbortSignal.timeout(500) }).json('GET', apiPath('models'))),
  ];
  for (const err of tried) t.not((err as { code?: unknown }).code, ErrorCodes.CLI_INSECURE_HUB, String(err));
});

test('tlsError: EPROTO is "does not speak HTTPS" only when OpenSSL says so; a handshake alert is a failed handshake', async (t) => {
  const peer = { name: 'the gateway of dev-1', url: 'https://127.0.0.1:8443', caHint: '', nameHint: '' };
  const openssl = (reason: string) => Object.assign(new Error(`write EPROTO 40F7A1E3:error:0A000410:SSL routines:ssl3_read_bytes:${reason}:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1605:`), { code: 'EPROTO' });
  const alert = await tlsError(openssl('sslv3 alert handshake failure'), peer);
  t.is(alert?.code, ErrorCodes.CLI_TLS);
  t.is(alert?.message, 'the TLS handshake with the gateway of dev-1 at https://127.0.0.1:8443 failed (sslv3 alert handshake failure)');
  for (const reason of ['wrong version number', 'http request', 'packet length too long']) {
    t.is((await tlsError(openssl(reason), peer))?.message, 'the gateway of dev-1 at https://127.0.0.1:8443 does not speak HTTPS (is it plain HTTP? then use http://)', reason);
  }
  t.is((await tlsError(Object.assign(new Error('write EPROTO'), { code: 'EPROTO' }), peer))?.message, 'the TLS handshake with the gateway of dev-1 at https://127.0.0.1:8443 failed (EPROTO)');
  t.is(await tlsError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), peer), undefined);
});
