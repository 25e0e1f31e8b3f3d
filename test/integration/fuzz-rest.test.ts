/**
 * REST fuzzing against a real hub process: every POST/PUT/PATCH route its `/openapi.json` lists gets
 * valid bodies built from the route's schema, the same with one mutation, broken JSON, wrong
 * content types, hostile path and query values, and (uploads) random bytes and tar-ish archives.
 * Invariants: never a 5xx, every 4xx in the documented error shape, nothing stored on a 4xx, and a
 * hub killed afterwards starts again on its data, with everything it had stored.
 *
 * Seeded and bounded (see test/helpers/fuzz/random.ts): EDGEML_FUZZ_SEED replays a failure,
 * EDGEML_FUZZ_ITERATIONS / EDGEML_FUZZ_SECONDS run longer.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import test from 'ava';
import { request } from 'undici';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { hostileTars, randomTarish, type HostileTar } from '../helpers/fuzz/hostile-tars.js';
import { brokenJson, mutate, validValue, type JsonSchema, type Vocabulary } from '../helpers/fuzz/json-schema-values.js';
import { routesOf, type Route } from '../helpers/fuzz/openapi-routes.js';
import { fuzzBudget, Random } from '../helpers/fuzz/random.js';
import { storedBlobs, storedState } from '../helpers/fuzz/stored-state.js';
import { api, blobFiles, enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const MAX_ARCHIVE_FILES = 64;
/** Bodies up to a bit over the hub's 1 MiB JSON limit, so both sides of it are tried. */
const MAX_STRING = 1_200_000;

const VOCABULARY: Vocabulary = {
  words: ['fuzz-dev', 'fuzz-model', 'fuzz-model:1', 'fuzz-model@prod', 'fuzz-scorer', 'fuzz', 'site', 'svc', '1', '2', 'latest', '@prod', 'prod'],
  keys: ['site', 'zone', 'k', 'a.b', 'team/x', 'Z9'],
};

/** Path segments a router or a handler might get wrong (sent as they are: some are pre-encoded). */
const HOSTILE_SEGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '..%2f..%2fetc',
  '%2F',
  '%00',
  '%',
  '%ff',
  '%F0%9F%98%80',
  '__proto__',
  'constructor',
  'hasOwnProperty',
  'x'.repeat(5000),
  '-1',
  '0',
  '99999999999999999999',
  '1e3',
  '%40',
  '@',
  '%20',
  'a%0d%0aX-Injected:%201',
  'latest',
  'NaN',
  '%2B',
  '+',
  '%23',
];

const JUNK_CONTENT_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/json; charset=latin1', 'application/x-tar', '*/*', 'application/jsonx'];

interface Attempt {
  route: Route;
  url: string;
  contentType?: string;
  body?: string | Buffer;
  /** How the input was made, for the failure message. */
  how: string;
  authorization?: string;
}

function pathValue(rng: Random, schema: JsonSchema): string {
  if (rng.chance(0.25)) return rng.pick(HOSTILE_SEGMENTS);
  return encodeURIComponent(String(validValue(schema, rng, VOCABULARY)));
}

function queryString(rng: Random, route: Route): string {
  const parts: string[] = [];
  for (const q of route.query) {
    if (!q.required && rng.chance(0.5)) continue;
    const value = rng.chance(0.2) ? rng.pick(['', '%', '__proto__', 'x'.repeat(3000), '=', 'a=b=c', '%00', '-1', '1e999']) : encodeURIComponent(String(validValue(q.schema, rng, VOCABULARY)));
    parts.push(`${encodeURIComponent(q.name)}=${value}`);
  }
  if (rng.chance(0.1)) parts.push(`${rng.pick(['__proto__', 'constructor', 'extra'])}=${rng.pick(['1', 'x'])}`);
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

async function makeAttempt(rng: Random, routes: Route[], hub: HubProcess, hostile: readonly HostileTar[]): Promise<Attempt> {
  const route = rng.pick(routes);
  const path = route.path.replace(/\{([^}]+)\}/g, (_, name: string) => pathValue(rng, route.pathParams.find((p) => p.name === name)?.schema ?? {}));
  const url = `${hub.url}${path}${queryString(rng, route)}`;
  const authorization = rng.chance(0.04) ? rng.pick(['', 'Bearer ', 'Bearer emk_nope', `Bearer ${hub.adminKey}x`, `Basic ${hub.adminKey}`, `bearer  ${hub.adminKey}`]) : `Bearer ${hub.adminKey}`;
  const types = Object.keys(route.body);
  const jsonSchema = route.body['application/json'];

  if (jsonSchema !== undefined) {
    const valid = validValue(jsonSchema, rng, VOCABULARY);
    const roll = rng.next();
    if (roll < 0.25) return { route, url, authorization, contentType: 'application/json', body: JSON.stringify(valid), how: 'valid' };
    if (roll < 0.8) {
      const mutation = mutate(valid, rng, MAX_STRING);
      return { route, url, authorization, contentType: 'application/json', body: mutation.text, how: `mutated (${mutation.kind})` };
    }
    if (roll < 0.93) {
      const broken = brokenJson(valid, rng);
      return { route, url, authorization, contentType: 'application/json', body: broken.text, how: `broken JSON (${broken.kind})` };
    }
    const contentType = rng.chance(0.2) ? undefined : rng.pick(JUNK_CONTENT_TYPES);
    return { route, url, authorization, contentType, body: JSON.stringify(valid), how: `valid JSON as ${contentType ?? 'no content type'}` };
  }
  if (types.length > 0) {
    // An upload: random bytes, or something tar-like, as any of its types or a wrong one.
    const contentType = rng.chance(0.85) ? rng.pick(types) : rng.pick(JUNK_CONTENT_TYPES);
    const body = rng.chance(0.4) ? rng.bytes(rng.int(0, 65_536)) : await randomTarish(rng, hostile);
    return { route, url, authorization, contentType, body, how: `upload of ${body.length} bytes` };
  }
  // A route without a body (revoke, pause, cancel…): mostly none, sometimes one anyway.
  if (rng.chance(0.7)) return { route, url, authorization, how: 'no body' };
  return { route, url, authorization, contentType: rng.pick(['application/json', ...JUNK_CONTENT_TYPES]), body: rng.chance(0.5) ? '{"a":1}' : rng.bytes(rng.int(0, 2000)), how: 'unexpected body' };
}

const excerpt = (value: unknown, n: number) => {
  const text = Buffer.isBuffer(value) ? `<${value.length} bytes>` : String(value);
  return text.length > n ? `${text.slice(0, n)}…(${text.length} chars)` : text;
};

function describe(a: Attempt, answer: string): string {
  return `${a.route.method} ${excerpt(a.url, 240)} [${a.contentType ?? 'no content type'}; ${a.how}] body ${excerpt(a.body ?? '', 300)} -> ${answer}`;
}

function isErrorShape(body: unknown): boolean {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === 'string' && error.code.length > 0 && typeof error.message === 'string' && error.message.length > 0;
}

test('REST fuzz: every POST/PUT/PATCH route; no 5xx, error shape on 4xx, nothing stored on 4xx, the hub restarts on its data', async (t) => {
  t.timeout(240_000);
  const budget = fuzzBudget(t, { iterations: 2500, seconds: 25 });
  const rng = new Random(budget.seed);
  // DATA inside a directory of its own, so anything written beside it would show.
  const root = await tempDir(t, 'edgeml-fuzz-rest-');
  const data = join(root, 'data');
  await mkdir(data);
  // No Docker for this hub: a build the fuzzer manages to start fails at once instead of running.
  const env = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
  const args = ['--max-archive-files', String(MAX_ARCHIVE_FILES)];
  const hub = await startHub(t, args, { data, env });

  // Something to hit: a device, a model with an alias, a manifest, so valid bodies can succeed.
  await enrollDevice(hub, 'fuzz-dev', { site: 'fuzz' });
  t.is((await api(hub, 'POST', '/api/v1/models/fuzz-model/versions?filename=w.bin', { key: hub.adminKey, body: Buffer.from('weights') })).status, 201);
  t.is((await api(hub, 'PUT', '/api/v1/models/fuzz-model/aliases/prod', { key: hub.adminKey, json: { version: 1 } })).status, 200);

  // Bodies are $refs to component schemas: the fuzzer needs them inline.
  const document = (await SwaggerParser.dereference(structuredClone((await api(hub, 'GET', '/openapi.json')).body) as never)) as unknown as { paths: Record<string, Record<string, never>> };
  const routes = routesOf(document, ['POST', 'PUT', 'PATCH']);
  t.true(routes.length >= 10, `routes in /openapi.json: ${routes.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  const hostile = await hostileTars(`edgeml-fuzz-escape-${budget.seed}`, { maxFiles: MAX_ARCHIVE_FILES });

  const failures: string[] = [];
  const seen = new Set<string>();
  const fail = (kind: string, a: Attempt, answer: string, sameCause = `${a.route.method} ${a.route.path}`) => {
    // One report per kind of failure and cause (by default the route): the first is the one to replay.
    const key = `${kind} ${sameCause}`;
    if (seen.has(key)) return;
    seen.add(key);
    failures.push(`${kind}: ${describe(a, answer)}`);
  };
  const statuses = new Map<number, number>();
  let state = await storedState(data);
  let blobs = await storedBlobs(data);
  let sent = 0;
  for (; !budget.spent(sent) && failures.length < 20; sent++) {
    const a = await makeAttempt(rng, routes, hub, hostile);
    const headers: Record<string, string> = {};
    if (a.authorization) headers.authorization = a.authorization;
    if (a.contentType) headers['content-type'] = a.contentType;
    // A few keys used again and again (replays and 422 mismatches), and values the header refuses.
    if (rng.chance(0.2)) headers['idempotency-key'] = rng.chance(0.8) ? `fuzz-${rng.int(0, 4)}` : rng.pick([' ', 'x'.repeat(300), 'é', '__proto__', 'a b']);
    let status: number;
    let text: string;
    try {
      const res = await request(a.url, { method: a.route.method as 'POST', headers, body: a.body, headersTimeout: 20_000, bodyTimeout: 20_000 });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      // undici refusing to send a header value is no answer from the hub.
      if ((err as { code?: string }).code === 'UND_ERR_INVALID_ARG') continue;
      // A hub may cut a body over its limit short once it has answered; anything else is a failure.
      const oversized = Buffer.byteLength(a.body ?? '') > 1024 * 1024;
      if (!hub.running) fail('hub died', a, String(err));
      else if (!oversized) fail('no answer', a, String(err));
      continue;
    }
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (!hub.running) {
      fail('hub died', a, `${status} ${excerpt(text, 300)}; hub output: ${hub.tail(5)}`);
      break;
    }
    if (status >= 500) fail(`${status}`, a, `${status} ${excerpt(text, 400)}`);
    if (status >= 400 && status < 500) {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (!isErrorShape(body)) fail('4xx off the error shape', a, `${status} ${excerpt(text, 300)}`, `${status} ${String((body as { code?: unknown } | undefined)?.code)}`);
      const after = await storedState(data);
      if (after !== state) fail('4xx stored something', a, `${status} ${excerpt(text, 200)}; stored before:\n${excerpt(state, 1500)}\nafter:\n${excerpt(after, 1500)}`);
      const blobsAfter = await storedBlobs(data);
      if (blobsAfter.join() !== blobs.join()) fail('4xx stored a blob', a, `${status} ${excerpt(text, 200)}; blobs before ${blobs.length}, after ${blobsAfter.length}`);
      state = after;
      blobs = blobsAfter;
    } else {
      state = await storedState(data);
      blobs = await storedBlobs(data);
    }
  }
  t.log(`${sent} requests in ${Math.round((Date.now() - budget.startedAt) / 1000)} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.true(sent >= Math.min(budget.iterations, 100) || failures.length > 0, `only ${sent} requests in the time budget`);
  t.is(failures.length, 0, `seed ${budget.seed}: ${failures.length} failures:\n${failures.join('\n\n')}`);
  await waitFor('no upload temp files left behind', async () => (await blobFiles(data)).tmp.length === 0, 10_000);

  // Killed as a crash would, the hub starts again on the same data and has all of it.
  const before = await storedState(data);
  await hub.kill('SIGKILL');
  const again = await startHub(t, args, { data, env });
  const health = await api<{ status: string }>(again, 'GET', '/healthz');
  t.is(health.status, 200);
  const problems = health.body.status === 'ok' ? null : (await api(again, 'GET', '/api/v1/problems', { key: again.adminKey })).body;
  t.is(health.body.status, 'ok', `seed ${budget.seed}: /healthz after a restart on the fuzzed data: ${JSON.stringify(health.body)} ${JSON.stringify(problems)}`);
  t.is(await storedState(data), before, `seed ${budget.seed}: what was stored before the kill`);
  t.deepEqual(await readdir(root), ['data'], 'nothing written beside the data directory');
});
