/**
 * The hub's OpenAPI document, built in-process from every route: valid for swagger-parser (redocly:
 * test/integration/openapi.test.ts), an operationId on every operation, named component schemas, security and 401/403 on
 * every scoped route; and client/operations.ts generated from it, up to date.
 */
import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import test from 'ava';
import { openApiDocument } from '../../hub/http/openapi-document.js';
import { API_MODULES, schemaNames } from '../../hub/http/openapi-names.js';
import { renderOperations } from '../../hub/http/openapi-operations.js';
import { operationPath } from '../../client/hub-client.js';
import { badOperationIds, inlineJsonBodies, securityProblems, swaggerParserProblem } from '../helpers/openapi-checks.js';

const root = new URL('../../', import.meta.url);
const documentOnce = openApiDocument();

// redocly runs as a process: in the integration test, against the document a running hub serves.
test('the document passes swagger-parser validate()', async (t) => {
  t.is(await swaggerParserProblem(await documentOnce), undefined);
});

test('every operation has a unique camelCase operationId, verb first', async (t) => {
  t.deepEqual(badOperationIds(await documentOnce), []);
});

test('every JSON body is a named component schema', async (t) => {
  const document = await documentOnce;
  t.deepEqual(inlineJsonBodies(document), []);
  const schemas = (document.components as { schemas: Record<string, unknown> }).schemas;
  for (const name of ['Device', 'DeviceList', 'DeviceEnroll', 'ErrorBody', 'ModelVersion', 'Deployment']) t.truthy(schemas[name], name);
});

test('every operation states its security; scoped ones document 401 and 403; /metrics takes the bearer key, /healthz none', async (t) => {
  const document = (await documentOnce) as { paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>> };
  t.deepEqual(securityProblems(document), []);
  t.deepEqual(document.paths['/metrics']!.get!.security, [{ apiKey: [] }]);
  t.truthy((document.paths['/metrics']!.get!.responses['200'] as { content: Record<string, unknown> }).content['text/plain; version=0.0.4; charset=utf-8']);
  t.deepEqual(document.paths['/healthz']!.get!.security, []);
  t.deepEqual(document.paths['/api/v1/ca']!.get!.security, []);
  t.truthy(document.paths['/api/v1/models/{name}/versions']!.post!.responses['413'], 'an upload documents 413');
});

test('a streaming answer keeps its own content type and its errors stay JSON', async (t) => {
  const document = (await documentOnce) as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>> };
  const captures = document.paths['/api/v1/captures/{service}']!.get!.responses;
  t.deepEqual(Object.keys(captures['200']!.content!), ['application/x-ndjson']);
  t.deepEqual(Object.keys(captures['400']!.content!), ['application/json']);
});

test('schema names: no two different shared/api schemas share one, and every shared/api module is read', async (t) => {
  t.deepEqual(schemaNames().clashes, []);
  const files = (await readdir(new URL('shared/api/', root))).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -'.ts'.length));
  t.deepEqual(Object.keys(API_MODULES), files.sort());
});

test('schema names: the same name for two different schemas is a clash', (t) => {
  const clashes = schemaNames({ a: { Thing: Type.Object({ a: Type.String() }) }, b: { Thing: Type.Object({ b: Type.String() }) } }).clashes;
  t.is(clashes.length, 1);
  t.regex(clashes[0]!, /Thing/);
});

test('client/operations.ts is what `npm run generate:client` writes from the document', async (t) => {
  const committed = await readFile(new URL('client/operations.ts', root), 'utf8');
  t.true(committed === renderOperations(await documentOnce), 'client/operations.ts is out of date: run `npm run generate:client`');
});

test('the client loads no TypeBox at run time (type-only imports keep CLI start-up short)', (t) => {
  const hook = `data:text/javascript,${encodeURIComponent("export async function resolve(s, c, n) { const r = await n(s, c); process.stderr.write('LOADED ' + r.url + '\\n'); return r; }")}`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hook)});`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', "await import('./client/index.ts')"], {
    cwd: fileURLToPath(root),
    encoding: 'utf8',
  });
  t.is(run.status, 0, run.stderr);
  t.regex(run.stderr, /LOADED .*client\/operations\.ts/, 'the hook saw the client load');
  t.notRegex(run.stderr, /typebox/i);
});

test('operationPath fills and encodes path parameters', (t) => {
  t.is(operationPath('/api/v1/models/{name}/versions/{ref}', { name: 'iris', ref: '@production' }), '/api/v1/models/iris/versions/%40production');
  t.throws(() => operationPath('/api/v1/devices/{id}', {}), { message: /\{id\}/ });
});
