/**
 * `edgeml service client` (cli/commands/service-client.ts): each language's client, rendered from
 * its template, carries the score URL and the environment names, quoted for its language, with no
 * placeholder left; values that could break out of a literal or a comment are escaped or refused.
 * (test/integration/service-client.test.ts runs and compiles the clients against a real gateway.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import type { CliIo } from '../../cli/commands/client-command.js';
import { buildProgram } from '../../cli/main.js';
import { CLIENT_LANGUAGES, clientTemplate, parseKeyEnv, quotedLiteral, renderClient, shellQuoted } from '../../cli/commands/service-client.js';
import { ErrorCodes, isEdgemlError } from '../../shared/errors.js';

const SCORE_URL = 'https://127.0.0.1:8443/v1/services/iris-2/score';
const SPEC = { service: 'iris-2', scoreUrl: SCORE_URL, keyEnv: 'IRIS_KEY', sample: { features: [5.1, 3.5, 1.4, 0.2] } };

for (const lang of CLIENT_LANGUAGES) {
  test(`the ${lang} client has the URL, the key and CA variables, the sample and no placeholder left`, (t) => {
    const source = renderClient(clientTemplate(lang), SPEC);
    t.false(/__EDGEML_/.test(source));
    t.true(source.includes(lang === 'curl' ? `URL='${SCORE_URL}'` : `"${SCORE_URL}"`), 'the URL as a literal of the language');
    t.true(source.includes(lang === 'curl' ? "KEY_ENV='IRIS_KEY'" : '"IRIS_KEY"'), 'the key variable as a literal');
    t.true(source.includes('export IRIS_KEY=...'), 'the usage comment names the key variable');
    t.true(source.includes('EDGEML_SERVICE_CA'));
    t.true(source.includes('Sample input: {"features":[5.1,3.5,1.4,0.2]}'));
    t.true(source.includes('the edgeml service iris-2'));
    t.false(source.includes('EDGEML_SERVICE_KEY'), 'only the variable asked for');
    for (const status of ['429', '503']) t.true(source.includes(status), `retries ${status}`);
    t.regex(source, /MAX_TRIES\s*=\s*5|MaxTries = 5/);
    t.regex(source, /MAX_WAIT_SECONDS\s*=\s*30|MaxWaitSeconds = 30/);
  });
}

test('values are quoted for each language: JSON escapes, ASCII only, shell single quotes', (t) => {
  t.is(quotedLiteral('a"b\\c\u2028é'), '"a\\"b\\\\c\\u2028\\u00e9"');
  t.is(shellQuoted("it's $HOME `x`"), "'it'\\''s $HOME `x`'");
  const odd = 'https://[::1]:8443/v1/services/x/score?a="b"&c=\'d\'';
  t.true(renderClient(clientTemplate('python'), { ...SPEC, scoreUrl: odd }).includes('URL = "https://[::1]:8443/v1/services/x/score?a=\\"b\\"&c=\'d\'"'));
  t.true(renderClient(clientTemplate('curl'), { ...SPEC, scoreUrl: odd }).includes(`URL='https://[::1]:8443/v1/services/x/score?a="b"&c='\\''d'\\'''`));
});

test('a sample cannot end its comment line, and a long one is not copied', (t) => {
  const source = renderClient(clientTemplate('javascript'), { ...SPEC, sample: { text: 'line\nnext\u2028*/ end' } });
  t.true(source.includes('// Sample input: {"text":"line\\nnext\\u2028*/ end"}'));
  const long = renderClient(clientTemplate('java'), { ...SPEC, sample: { pixels: 'A'.repeat(5000) } });
  t.regex(long, /Sample input: \(5013 characters: see `edgeml manifest show`\)/);
  t.regex(renderClient(clientTemplate('csharp'), { ...SPEC, sample: undefined }), /Sample input: \(none known/);
});

test('names that are not names are refused before anything is written', (t) => {
  for (const keyEnv of ['1KEY', 'KEY-NAME', 'KEY;rm -rf', '', 'K"EY']) {
    const err = t.throws(() => parseKeyEnv(keyEnv));
    t.true(isEdgemlError(err, ErrorCodes.CLI_INPUT_INVALID), keyEnv);
    t.throws(() => renderClient(clientTemplate('curl'), { ...SPEC, keyEnv }));
  }
  t.is(parseKeyEnv('_MY_KEY2'), '_MY_KEY2');
  t.throws(() => renderClient(clientTemplate('python'), { ...SPEC, service: 'Iris"' }));
});

test('the javascript client: a 200 that is not JSON is its ScoreError, not a bare SyntaxError', async (t) => {
  const server = createServer((req, res) => {
    if (req.url?.endsWith('/json/score')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"label":"setosa"}');
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html>a proxy login page</html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/services`;
  const dir = mkdtempSync(join(tmpdir(), 'edgeml-js-client-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  process.env.JS_CLIENT_TEST_KEY = 'svc_test';
  t.teardown(() => delete process.env.JS_CLIENT_TEST_KEY);
  type Client = { score(payload: unknown): Promise<unknown>; ScoreError: new () => Error };
  const load = async (service: string): Promise<Client> => {
    const file = join(dir, `${service}.mjs`);
    writeFileSync(file, renderClient(clientTemplate('javascript'), { ...SPEC, service, scoreUrl: `${base}/${service}/score`, keyEnv: 'JS_CLIENT_TEST_KEY' }));
    return (await import(pathToFileURL(file).href)) as Client;
  };
  t.deepEqual(await (await load('json')).score({ features: [1] }), { label: 'setosa' });
  const html = await load('html');
  const err = await t.throwsAsync(html.score({ features: [1] }));
  t.true(err instanceof html.ScoreError, String(err));
  t.is(err?.message, `${base}/html/score answered 200 with no JSON: <html>a proxy login page</html>`);
});

/** A hub with `devices` (id → gateway, serving or not) for the deployment of iris (build 7 of manifest iris:2). */
async function fakeHub(t: ExecutionContext, devices: Array<{ id: string; gateway: string; serving: boolean }>): Promise<string> {
  const deviceOf = (d: (typeof devices)[number]) => ({
    id: d.id,
    status: 'online',
    labels: { site: 'lab' },
    gateway: d.gateway,
    services: [{ name: 'iris', servingRevision: d.serving ? 1 : null, phase: d.serving ? 'running' : 'pulling' }],
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url.pathname === '/api/v1/deployments/iris') return json({ service: 'iris', target: { site: 'lab' }, build: 7 });
    if (url.pathname === '/api/v1/devices' && url.searchParams.getAll('label').join() === 'site=lab') return json({ devices: devices.map(deviceOf) });
    const one = devices.find((d) => url.pathname === `/api/v1/devices/${d.id}`);
    if (one) return json(deviceOf(one));
    if (url.pathname === '/api/v1/images/7') return json({ id: 7, manifest: { name: 'iris', version: 2 } });
    if (url.pathname === '/api/v1/manifests/iris/versions/2') return json({ schema: { input: {}, output: {}, sample: { features: [1, 2, 3, 4] } } });
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'HUB_E_NOT_FOUND', message: `no route ${req.url}` } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** `edgeml service client iris ARGS` through the real command: its stdout, or its error. */
async function serviceClient(hub: string, ...args: string[]): Promise<string> {
  let stdout = '';
  const io = {
    env: { EDGEML_API_KEY: 'emk_test' },
    stdout: new Writable({ write: (chunk, _enc, done) => void ((stdout += String(chunk)), done()) }),
    stderr: new Writable({ write: (_chunk, _enc, done) => done() }),
    cwd: process.cwd(),
    interruptSignal: () => new AbortController().signal,
  } as unknown as CliIo;
  await buildProgram(io).configureOutput({ writeErr: () => undefined }).parseAsync(['node', 'edgeml', 'service', 'client', 'iris', '--hub', hub, ...args]);
  return stdout;
}

test('the client is for the one device serving the service, or the one --device names', async (t) => {
  const hub = await fakeHub(t, [
    { id: 'gw-1', gateway: 'https://127.0.0.1:8441', serving: true },
    { id: 'gw-2', gateway: 'https://127.0.0.1:8442', serving: false },
  ]);
  const python = await serviceClient(hub, '--lang', 'python');
  t.true(python.includes('URL = "https://127.0.0.1:8441/v1/services/iris/score"'));
  t.true(python.includes('Sample input: {"features":[1,2,3,4]}'), "the manifest's sample");
  const err = await t.throwsAsync(serviceClient(hub, '--lang', 'python', '--device', 'gw-2'));
  t.true(isEdgemlError(err, ErrorCodes.CLI_SERVICE_NOT_ON_DEVICE), String(err));

  const both = await fakeHub(t, [
    { id: 'gw-1', gateway: 'https://127.0.0.1:8441', serving: true },
    { id: 'gw-2', gateway: 'https://127.0.0.1:8442', serving: true },
  ]);
  const several = await t.throwsAsync(serviceClient(both, '--lang', 'curl'));
  t.is(several?.message, '2 devices serve iris (gw-1, gw-2): pick one with --device');
  t.true((await serviceClient(both, '--lang', 'curl', '--device', 'gw-2')).includes("URL='https://127.0.0.1:8442/v1/services/iris/score'"));
  const json = JSON.parse(await serviceClient(both, '--lang', 'javascript', '--device', 'gw-1', '--key-env', 'IRIS_KEY', '--json')) as Record<string, unknown>;
  t.like(json, { service: 'iris', device: 'gw-1', lang: 'javascript', url: 'https://127.0.0.1:8441/v1/services/iris/score', keyEnv: 'IRIS_KEY', caEnv: 'EDGEML_SERVICE_CA' });

  const none = await fakeHub(t, [{ id: 'gw-1', gateway: 'http://192.0.2.7:8080', serving: true }]);
  const plain = await t.throwsAsync(serviceClient(none, '--lang', 'python'));
  t.true(isEdgemlError(plain, ErrorCodes.CLI_GATEWAY_REFUSED), 'a plain-http gateway off loopback needs --allow-insecure-http, as for score');
});
