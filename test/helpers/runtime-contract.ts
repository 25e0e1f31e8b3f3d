/**
 * The scoring runtime contract (DESIGN.md, "Scoring runtime contract (inside a container)") as ONE
 * suite, `contractSuite(runtime)`, which a test file calls once per runtime. A runtime is a
 * descriptor whose `start()` serves a fixture app (test/fixtures/runtimes/) and hands back a base
 * URL, its log lines and `stop(signal)`; the suite knows nothing else about how the server runs.
 * Importing this module registers no test.
 */
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { Runtime } from '../../shared/api/manifests.js';
import { tempDir, type EdgemlProcess, type LogLine } from './edgeml-process.js';
import { waitFor } from './wait.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = join(ROOT, 'test/fixtures/runtimes');
export const MODELS = join(FIXTURES, 'models');

/**
 * Fixture apps: `linear` (iris linear classifier with test hooks), and the variants. `extras`
 * (and `extras-cjs`) use custom metrics and decoded inputs, `dataframe` pandas; those bring their
 * own schema.json.
 */
export type FixtureApp = 'linear' | 'syntax-error' | 'commonjs' | 'esm-bare' | 'extras' | 'extras-cjs' | 'dataframe';

export interface RuntimeInstance {
  /** e.g. `http://127.0.0.1:41234`. */
  baseUrl: string;
  /** JSON lines the server (and the fixture app) printed so far. */
  logs(): LogLine[];
  /** Lines that were not JSON. */
  rawOutput(): string[];
  waitForLog(what: string, match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` and resolves with the exit code once the server has exited. */
  stop(signal: NodeJS.Signals): Promise<number | null>;
}

/** A runtime server process (a host process, or `docker run` attached) once it listens on `port`. */
export function runtimeInstance(proc: EdgemlProcess, port: unknown): RuntimeInstance {
  return {
    baseUrl: `http://127.0.0.1:${String(port)}`,
    logs: () => proc.logs,
    rawOutput: () => proc.rawOutput,
    waitForLog: (what, match, timeoutMs) => proc.waitForLog(what, match, timeoutMs),
    stop: (signal) => proc.kill(signal),
  };
}

export interface RuntimeDescriptor {
  name: string;
  /** The fixture apps this runtime has. */
  apps: readonly FixtureApp[];
  /** The scoring file's name and the line of the syntax-error fixture's error. */
  scoreFile: string;
  syntaxErrorLine: number;
  /** Serves `app` with extra env; resolves once it listens (init() may still be running). */
  start(t: ExecutionContext, app: FixtureApp, env?: Record<string, string>): Promise<RuntimeInstance>;
}

/** Per runtime, what its fixtures look like: the same whether served by a host process or an image. */
export const FIXTURE_FILES: Record<Runtime, Pick<RuntimeDescriptor, 'scoreFile' | 'syntaxErrorLine'>> = {
  node: { scoreFile: 'score.js', syntaxErrorLine: 6 },
  python: { scoreFile: 'score.py', syntaxErrorLine: 8 },
};

// ---------------------------------------------------------------------------------------------
// HTTP helpers

export interface Reply {
  status: number;
  headers: Headers;
  body: any; // JSON from the server
}

export async function call(base: string, method: string, path: string, body?: unknown, raw?: string): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {},
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

export const score = (base: string, input: unknown) => call(base, 'POST', '/score', input);

/** A request on its own connection (no pool), optionally with a chunked body. */
export function rawRequest(base: string, opts: { method: string; path: string; body?: string; chunked?: boolean }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${opts.path}`, { method: opts.method, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined && opts.chunked) {
      req.setHeader('transfer-encoding', 'chunked');
      for (let i = 0; i < opts.body.length; i += 500) req.write(opts.body.slice(i, i + 500));
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

export async function waitReady(rt: RuntimeInstance): Promise<void> {
  await waitFor('/health 200', async () => (await call(rt.baseUrl, 'GET', '/health')).status === 200);
}

export async function sample(): Promise<{ input: any; output: any; sample: any }> {
  return JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8'));
}

export function expectError(t: ExecutionContext, reply: Reply, status: number, code: string, message?: string | RegExp): void {
  t.is(reply.status, status, JSON.stringify(reply.body));
  t.is(reply.body?.error?.code, code);
  t.is(typeof reply.body?.error?.message, 'string');
  if (typeof message === 'string') t.is(reply.body.error.message, message);
  else if (message) t.regex(reply.body.error.message, message);
}

// ---------------------------------------------------------------------------------------------
// The contract

export const FLOWERS: Array<[number[], string]> = [
  [[5.9, 3.0, 4.2, 1.5], 'versicolor'],
  [[6.7, 3.0, 5.2, 2.3], 'virginica'],
  [[4.9, 3.0, 1.4, 0.2], 'setosa'],
];

export function contractSuite(runtime: RuntimeDescriptor): void {
  const name = (what: string) => `${runtime.name}: ${what}`;

  test(name('/health is 503 "starting" while init() runs (and /score 503 with Retry-After), then 200'), async (t) => {
    // init() waits for this file, so "starting" is observed however loaded the machine is.
    const gate = join(await tempDir(t, 'edgeml-gate-'), 'open');
    const rt = await runtime.start(t, 'linear', { FIXTURE_INIT_GATE: gate });
    const early = await call(rt.baseUrl, 'GET', '/health');
    t.is(early.status, 503);
    t.deepEqual(early.body, { status: 'starting' });
    const notReady = await score(rt.baseUrl, (await sample()).sample);
    expectError(t, notReady, 503, 'RUNTIME_E_NOT_READY');
    t.is(notReady.headers.get('retry-after'), '1');
    await writeFile(gate, '');
    await waitReady(rt);
    t.deepEqual((await call(rt.baseUrl, 'GET', '/health')).body, { status: 'ok' });
    const done = await rt.waitForLog('init done', (l) => l.msg === 'init done');
    t.true(Number.isFinite(Number(done.durationMs)), `init duration is logged: ${String(done.durationMs)}`);
  });

  test(name('the sample scores to its class, and other flowers to theirs'), async (t) => {
    const rt = await runtime.start(t, 'linear');
    await waitReady(rt);
    const reply = await score(rt.baseUrl, (await sample()).sample);
    t.is(reply.status, 200);
    t.is(reply.headers.get('content-type'), 'application/json; charset=utf-8');
    t.is(reply.body.class, 'setosa');
    t.deepEqual(Object.keys(reply.body.scores).sort(), ['setosa', 'versicolor', 'virginica']);
    t.true(Math.abs(reply.body.scores.setosa - 20.12001) < 1e-6, String(reply.body.scores.setosa));
    for (const [features, expected] of FLOWERS) {
      t.is((await score(rt.baseUrl, { features })).body.class, expected, JSON.stringify(features));
    }
  });

  test(name('a schema violation is a 400 naming the field'), async (t) => {
    const rt = await runtime.start(t, 'linear');
    await waitReady(rt);
    const cases: Array<[unknown, string]> = [
      [{ features: [5.1, 3.5] }, 'features: must NOT have fewer than 4 items'],
      [{ features: [1, 2, 3, 4, 5] }, 'features: must NOT have more than 4 items'],
      [{ features: [1, 2, 3, 'x'] }, 'features.3: must be number'],
      [{}, 'features: is required'],
      [{ features: [1, 2, 3, 4], extra: 1 }, 'extra: is not a known field'],
      [{ features: [1, 2, 3, 4], fixture: 'nope' }, 'fixture: must be one of "throw", "slow", "bad-output"'],
      [[1, 2, 3, 4], '(root): must be object'],
    ];
    for (const [input, message] of cases) {
      expectError(t, await score(rt.baseUrl, input), 400, 'RUNTIME_E_INVALID_INPUT', message);
    }
  });

  test(name('malformed JSON is a 400'), async (t) => {
    const rt = await runtime.start(t, 'linear');
    await waitReady(rt);
    for (const raw of ['{"features": [5.1, 3.5', '', 'NaN', '{"features": [1,2,3,4]} trailing']) {
      expectError(t, await call(rt.baseUrl, 'POST', '/score', undefined, raw), 400, 'RUNTIME_E_INVALID_JSON', /^request body is not valid JSON: /);
    }
  });

  test(name('run() throwing is a 500 with its message, and the server keeps serving'), async (t) => {
    const rt = await runtime.start(t, 'linear');
    await waitReady(rt);
    const { sample: input } = await sample();
    expectError(t, await score(rt.baseUrl, { ...input, fixture: 'throw' }), 500, 'RUNTIME_E_RUN_FAILED', 'fixture: run() was asked to fail');
    t.is((await score(rt.baseUrl, input)).body.class, 'setosa');
    expectError(t, await score(rt.baseUrl, { ...input, fixture: 'throw' }), 500, 'RUNTIME_E_RUN_FAILED');
    t.is((await score(rt.baseUrl, input)).status, 200);
    const logged = await rt.waitForLog('the 500 logged', (l) => l.level === 'error' && l.status === 500);
    t.is(logged.code, 'RUNTIME_E_RUN_FAILED');
    t.is(logged.error, 'fixture: run() was asked to fail');
  });

  test(name('an output not matching the output schema is answered, with a warning in the log'), async (t) => {
    const rt = await runtime.start(t, 'linear');
    await waitReady(rt);
    const reply = await score(rt.baseUrl, { ...(await sample()).sample, fixture: 'bad-output' });
    t.is(reply.status, 200);
    t.is(reply.body.class, 0);
    const warning = await rt.waitForLog('output warning', (l) => l.level === 'warn' && typeof l.problem === 'string');
    t.is(warning.problem, 'class: must be one of "setosa", "versicolor", "virginica"');
  });

  test(name('SIGTERM: the request in flight completes (a repeated SIGTERM does not cut it short), new connections are refused, idle keep-alive does not hold the exit, exit 0'), async (t) => {
    const rt = await runtime.start(t, 'linear', { FIXTURE_SLOW_RUN_MS: '1500', EDGEML_DRAIN_SECONDS: '20' });
    await waitReady(rt);
    const { hostname, port } = new URL(rt.baseUrl);

    // A keep-alive connection that has had its answer and now sits idle.
    const idle = net.connect(Number(port), hostname);
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
    const firstAnswer = new Promise<string>((resolve) => idle.once('data', (d: Buffer) => resolve(d.toString())));
    idle.on('error', () => undefined);
    idle.write(`GET /health HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`);
    t.regex(await firstAnswer, /^HTTP\/1\.1 200 /);

    const slow = rawRequest(rt.baseUrl, { method: 'POST', path: '/score', body: JSON.stringify({ ...(await sample()).sample, fixture: 'slow' }) });
    await rt.waitForLog('the slow run to start', (l) => l.msg === 'fixture: slow run started');
    const exited = rt.stop('SIGTERM');
    const shutting = await rt.waitForLog('shutting down', (l) => String(l.msg).startsWith('shutting down'));
    t.is(shutting.inFlight, 1);
    // An agent restarted in the middle of a stop sends it again.
    void rt.stop('SIGTERM');
    t.is((await rt.waitForLog('the repeated SIGTERM', (l) => l.msg === 'SIGTERM again: still draining')).inFlight, 1);

    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(Number(port), hostname);
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    t.is(refused, 'ECONNREFUSED');

    await idleClosed;
    const answer = await slow;
    t.is(answer.status, 200);
    t.is(answer.body.class, 'setosa');
    t.is(answer.headers.connection, 'close');
    t.is(await exited, 0);
    t.truthy(rt.logs().find((l) => l.msg === 'stopped'));
  });

  test(name('a drain that outlasts EDGEML_DRAIN_SECONDS exits 1'), async (t) => {
    const rt = await runtime.start(t, 'linear', { FIXTURE_SLOW_RUN_MS: '5000', EDGEML_DRAIN_SECONDS: '0.3' });
    await waitReady(rt);
    const slow = rawRequest(rt.baseUrl, { method: 'POST', path: '/score', body: JSON.stringify({ ...(await sample()).sample, fixture: 'slow' }) });
    slow.catch(() => undefined);
    await rt.waitForLog('the slow run to start', (l) => l.msg === 'fixture: slow run started');
    const started = Date.now();
    t.is(await rt.stop('SIGTERM'), 1);
    t.true(Date.now() - started < 4000, `exit took ${Date.now() - started} ms`);
    await t.throwsAsync(slow);
    t.truthy(rt.logs().find((l) => l.level === 'error' && String(l.msg).startsWith('drain timed out')));
  });

  test(name('a syntax error in the scoring file: /health says failed naming the file, the log says why, the server stays up'), async (t) => {
    const rt = await runtime.start(t, 'syntax-error');
    const health = await waitFor('/health failed', async () => {
      const reply = await call(rt.baseUrl, 'GET', '/health');
      return reply.body?.status === 'failed' ? reply : undefined;
    });
    t.is(health.status, 503);
    const where = new RegExp(`${runtime.scoreFile}:${runtime.syntaxErrorLine}\\b`);
    t.regex(health.body.error, new RegExp(`^cannot load /\\S+/${runtime.scoreFile.replace('.', '\\.')}: SyntaxError: `));
    t.regex(health.body.error, where);
    const logged = await rt.waitForLog('load failure logged', (l) => l.level === 'error' && l.msg === 'scoring module failed to load');
    t.is(logged.error, health.body.error);
    const reply = await score(rt.baseUrl, (await sample()).sample);
    expectError(t, reply, 503, 'RUNTIME_E_NOT_READY', /SyntaxError/);
    t.is(reply.headers.get('retry-after'), null);
    t.is((await call(rt.baseUrl, 'GET', '/health')).status, 503);
  });

  test(name('/swagger.json is an OpenAPI document with the input schema and the sample as example'), async (t) => {
    const rt = await runtime.start(t, 'linear');
    const schema = await sample();
    const reply = await call(rt.baseUrl, 'GET', '/swagger.json');
    t.is(reply.status, 200);
    const doc = reply.body;
    t.regex(doc.openapi, /^3\./);
    const deref = (node: any) => {
      const ref: string | undefined = node?.$ref;
      if (!ref) return node;
      return ref.slice(2).split('/').reduce((at: any, key) => at[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    };
    const body = doc.paths['/score'].post.requestBody.content['application/json'];
    t.deepEqual(body.example, schema.sample);
    const input = deref(body.schema);
    t.deepEqual(input.properties.features, { $ref: '#/components/schemas/ScoreInput/definitions/measurements' });
    t.deepEqual(deref(input.properties.features), schema.input.definitions.measurements);
    t.deepEqual({ ...input, properties: { ...input.properties, features: schema.input.properties.features } }, schema.input);
    t.deepEqual(deref(doc.paths['/score'].post.responses['200'].content['application/json'].schema), schema.output);
    for (const status of ['400', '500', '503']) {
      const error = deref(doc.paths['/score'].post.responses[status].content['application/json'].schema);
      t.deepEqual(error.required, ['error'], status);
      t.deepEqual(error.properties.error.required, ['code', 'message'], status);
    }
    t.truthy(doc.paths['/health'].get.responses['200']);
  });

  test(name('a body over EDGEML_MAX_BODY_BYTES is a 413, and the server keeps serving'), async (t) => {
    const rt = await runtime.start(t, 'linear', { EDGEML_MAX_BODY_BYTES: '1024' });
    await waitReady(rt);
    const { sample: input } = await sample();
    const padded = (bytes: number) => JSON.stringify({ ...input, id: 'x'.repeat(bytes) });
    const message = 'request body is larger than 1024 bytes (EDGEML_MAX_BODY_BYTES)';
    expectError(t, await call(rt.baseUrl, 'POST', '/score', undefined, padded(2000)), 413, 'RUNTIME_E_TOO_LARGE', message);
    expectError(t, await call(rt.baseUrl, 'POST', '/score', undefined, padded(300_000)), 413, 'RUNTIME_E_TOO_LARGE', message);
    const chunked = await rawRequest(rt.baseUrl, { method: 'POST', path: '/score', body: padded(5000), chunked: true });
    t.is(chunked.status, 413);
    t.is(chunked.body.error.code, 'RUNTIME_E_TOO_LARGE');
    t.is((await call(rt.baseUrl, 'POST', '/score', undefined, padded(900))).status, 200);
    const small = await rawRequest(rt.baseUrl, { method: 'POST', path: '/score', body: padded(500), chunked: true });
    t.is(small.status, 200);
    t.is(small.body.class, 'setosa');
  });

  test(name('an unknown route is a 404'), async (t) => {
    const rt = await runtime.start(t, 'linear');
    await waitReady(rt);
    expectError(t, await call(rt.baseUrl, 'GET', '/nope'), 404, 'RUNTIME_E_NOT_FOUND', /no route GET \/nope/);
    expectError(t, await call(rt.baseUrl, 'GET', '/score'), 404, 'RUNTIME_E_NOT_FOUND');
  });

  test(name('logs are JSON lines with level, time and msg, and never carry request bodies'), async (t) => {
    const rt = await runtime.start(t, 'linear');
    await waitReady(rt);
    const secret = `secret-${Math.random().toString(36).slice(2)}`;
    const { sample: input } = await sample();
    t.is((await score(rt.baseUrl, { ...input, id: secret, fixture: 'throw' })).status, 500);
    t.is((await score(rt.baseUrl, { ...input, id: secret, extra: secret })).status, 400);
    t.is((await call(rt.baseUrl, 'POST', '/score', undefined, `{"id": "${secret}"`)).status, 400);
    t.is((await score(rt.baseUrl, { ...input, id: secret })).status, 200);
    t.is(await rt.stop('SIGTERM'), 0);
    t.deepEqual(rt.rawOutput(), []);
    const msgs = rt.logs().map((l) => l.msg);
    for (const expected of ['starting', 'listening', 'scoring module loaded', 'init done', 'stopped']) t.true(msgs.includes(expected), expected);
    t.truthy(rt.logs().find((l) => String(l.msg).startsWith('shutting down')));
    for (const line of rt.logs()) {
      t.true(['info', 'warn', 'error', 'fatal'].includes(String(line.level)), JSON.stringify(line));
      t.false(Number.isNaN(Date.parse(String(line.time))), JSON.stringify(line));
      t.is(typeof line.msg, 'string');
      t.false(JSON.stringify(line).includes(secret), JSON.stringify(line));
    }
  });

  if (runtime.apps.includes('extras')) extrasSuite(runtime, 'extras');
  if (runtime.apps.includes('extras-cjs')) extrasSuite(runtime, 'extras-cjs');
  if (runtime.apps.includes('dataframe')) {
    test(name('a schema asking for a DataFrame when pandas is missing: /health says failed naming the package'), async (t) => {
      const rt = await runtime.start(t, 'dataframe', { PYTHONPATH: join(FIXTURES, 'python/no-pandas') });
      const health = await waitFor('/health failed', async () => {
        const reply = await call(rt.baseUrl, 'GET', '/health');
        return reply.body?.status === 'failed' ? reply : undefined;
      });
      t.regex(health.body.error, /"x-edgeml-decode": "dataframe", which needs the Python package pandas: .*\(install python3-pandas, or list pandas in requirements\.txt\)/);
      expectError(t, await score(rt.baseUrl, { rows: [] }), 503, 'RUNTIME_E_NOT_READY', /pandas/);
    });
  }

  if (runtime.apps.includes('commonjs')) {
    test(name('a CommonJS score.js (module.exports, sync init and run) works'), async (t) => {
      const rt = await runtime.start(t, 'commonjs');
      await waitReady(rt);
      t.is((await score(rt.baseUrl, (await sample()).sample)).body.class, 'setosa');
      for (const [features, expected] of FLOWERS) t.is((await score(rt.baseUrl, { features })).body.class, expected);
    });
  }

  if (runtime.apps.includes('esm-bare')) {
    test(name('an ES-module score.js without "type": "module" (importing a helper) works'), async (t) => {
      const rt = await runtime.start(t, 'esm-bare');
      await waitReady(rt);
      t.is((await score(rt.baseUrl, (await sample()).sample)).body.class, 'setosa');
      for (const [features, expected] of FLOWERS) t.is((await score(rt.baseUrl, { features })).body.class, expected);
    });
  }
}

/** PNG magic number, then four more bytes. */
const PNG_HEAD = Buffer.from('89504e470d0a1a0a00000000', 'hex');

function extrasSuite(runtime: RuntimeDescriptor, app: 'extras' | 'extras-cjs'): void {
  const name = (what: string) => `${runtime.name} (${app}): ${what}`;

  test(name('custom metrics: count and observe from run() show in GET /metrics; bad names and values, and updates whose total would overflow, are a 500 naming them'), async (t) => {
    const rt = await runtime.start(t, app);
    await waitReady(rt);
    const first = await call(rt.baseUrl, 'GET', '/metrics');
    t.is(first.status, 200);
    t.regex(first.headers.get('content-type') ?? '', /^application\/json/);
    t.deepEqual({ ...first.body, startedAt: 'x' }, { startedAt: 'x', counters: {}, observations: {}, dropped: 0 });
    t.false(Number.isNaN(Date.parse(first.body.startedAt)), first.body.startedAt);
    const calls = [['count', 'images'], ['count', 'pixels', 300], ['observe', 'confidence', 0.5], ['observe', 'confidence', 0.25], ['observe', 'confidence', 2]];
    t.is((await score(rt.baseUrl, { metrics: calls })).status, 200);
    t.is((await score(rt.baseUrl, { metrics: [['count', 'images'], ['count', 'a.b_c', 0]] })).status, 200);
    const after = (await call(rt.baseUrl, 'GET', '/metrics')).body;
    t.is(after.startedAt, first.body.startedAt);
    t.deepEqual(after.counters, { images: 2, pixels: 300, 'a.b_c': 0 });
    t.deepEqual(after.observations, { confidence: { count: 3, sum: 2.75, min: 0.25, max: 2 } });
    expectError(t, await score(rt.baseUrl, { metrics: [['count', '9bad']] }), 500, 'RUNTIME_E_RUN_FAILED', /invalid name "9bad"|invalid name '9bad'/);
    expectError(t, await score(rt.baseUrl, { metrics: [['count', 'neg', -1]] }), 500, 'RUNTIME_E_RUN_FAILED', /n must be a finite number >= 0/);
    expectError(t, await score(rt.baseUrl, { metrics: [['observe', 'str', 'x']] }), 500, 'RUNTIME_E_RUN_FAILED', /value must be a finite number/);
    // At most 100 distinct names: 4 are in use, 96 more fit, the rest are dropped and counted.
    const many = Array.from({ length: 100 }, (_, i) => ['count', `n${i}`]);
    t.is((await score(rt.baseUrl, { metrics: many })).status, 200);
    const full = (await call(rt.baseUrl, 'GET', '/metrics')).body;
    t.is(Object.keys(full.counters).length + Object.keys(full.observations).length, 100);
    t.is(full.dropped, 4);
    t.is(full.counters.n95, 1);
    t.is(full.counters.n96, undefined);
    // An update whose total would overflow is refused like a bad value; /metrics keeps answering.
    const huge = Number.MAX_VALUE;
    t.is((await score(rt.baseUrl, { metrics: [['count', 'pixels', huge], ['observe', 'confidence', huge]] })).status, 200);
    expectError(t, await score(rt.baseUrl, { metrics: [['count', 'pixels', huge]] }), 500, 'RUNTIME_E_RUN_FAILED', /metrics\.count\(["']pixels["']\): the total would overflow/);
    expectError(t, await score(rt.baseUrl, { metrics: [['observe', 'confidence', huge]] }), 500, 'RUNTIME_E_RUN_FAILED', /metrics\.observe\(["']confidence["']\): the total would overflow/);
    const capped = await call(rt.baseUrl, 'GET', '/metrics');
    t.is(capped.status, 200);
    t.is(capped.body.counters.pixels, 300 + huge);
    t.deepEqual(capped.body.observations.confidence, { count: 4, sum: 2.75 + huge, min: 0.25, max: huge });
  });

  test(name('base64 image fields (and x-edgeml-decode: bytes) reach run() as bytes; other base64 strings stay strings; bad base64 is a 400'), async (t) => {
    const rt = await runtime.start(t, app);
    await waitReady(rt);
    const b64 = PNG_HEAD.toString('base64');
    const reply = await score(rt.baseUrl, { image: b64, raw: b64, blob: 'AAEC', kept: b64, images: [b64, 'AA=='] });
    t.is(reply.status, 200, JSON.stringify(reply.body));
    t.deepEqual(reply.body.image, { type: 'bytes', length: 12, hex: '89504e470d0a1a0a' });
    t.deepEqual(reply.body.raw, { type: 'string' });
    t.deepEqual(reply.body.blob, { type: 'bytes', length: 3, hex: '000102' });
    t.deepEqual(reply.body.kept, { type: 'string' });
    t.deepEqual(reply.body.images, [{ type: 'bytes', length: 12, hex: '89504e470d0a1a0a' }, { type: 'bytes', length: 1, hex: '00' }]);
    expectError(t, await score(rt.baseUrl, { image: 'not base64!' }), 400, 'RUNTIME_E_INVALID_INPUT', 'image: must be base64');
    expectError(t, await score(rt.baseUrl, { images: [b64, 'abc'] }), 400, 'RUNTIME_E_INVALID_INPUT', 'images.1: must be base64');
    const matrix = (await score(rt.baseUrl, { matrix: [[1, 2], [3, 4], [5, 6]] })).body.matrix;
    // numpy for score.py; plain JSON for score.js.
    t.deepEqual(matrix, runtime.name === 'python' ? { type: 'ndarray', dtype: 'float32', shape: [3, 2] } : { type: 'array' });
  });
}
