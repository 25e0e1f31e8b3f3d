/**
 * A running hub's /openapi.json, fetched over HTTP, passes swagger-parser and redocly lint and
 * keeps the promises generated clients rely on; and the package's typed client (`edgeml/client`,
 * the built dist/ by the package's self-reference) works against that hub.
 */
import test from 'ava';
import { request } from 'undici';
import { openApiDocument } from '../../hub/http/openapi-document.js';
import { startHub, tempDir } from '../helpers/edgeml-process.js';
import { badOperationIds, inlineJsonBodies, redoclyErrors, securityProblems, swaggerParserProblem } from '../helpers/openapi-checks.js';

test('a running hub serves a valid OpenAPI document, and edgeml/client calls its operations typed', async (t) => {
  const hub = await startHub(t);
  const res = await request(`${hub.url}/openapi.json`);
  t.is(res.statusCode, 200);
  const document = (await res.body.json()) as Record<string, unknown>;
  // What the unit tests check and client/operations.ts is generated from is what a running hub serves.
  const version = (document.info as { version: string }).version;
  t.deepEqual(document, JSON.parse(JSON.stringify(await openApiDocument(version))) as unknown);

  t.is(await swaggerParserProblem(document), undefined);
  const lint = await redoclyErrors(document, await tempDir(t));
  t.deepEqual(lint.problems, []);
  t.is(lint.errors, 0);
  t.deepEqual(badOperationIds(document), []);
  t.deepEqual(inlineJsonBodies(document), []);
  t.deepEqual(securityProblems(document), []);

  const { HubClient, isEdgemlError, ErrorCodes } = await import('edgeml/client');
  const client = new HubClient({ baseUrl: hub.url, apiKey: hub.adminKey });
  const enrolled = await client.call('enrollDevice', { body: { id: 'gw-openapi', labels: { site: 'lab' } } });
  t.is(enrolled.id, 'gw-openapi');
  t.true(enrolled.token.length > 0);
  const device = await client.call('getDevice', { params: { id: 'gw-openapi' } });
  t.is(device.status, 'never-connected');
  t.deepEqual(device.labels, { site: 'lab' });
  const listed = await client.call('listDevices', { query: { label: ['site=lab'] } });
  t.deepEqual(
    listed.devices.map((d) => d.id),
    ['gw-openapi'],
  );
  t.deepEqual((await client.call('listDevices', { query: { label: ['site=elsewhere'] } })).devices, []);
  t.is((await client.call('getHealth')).status, 'ok');

  const metrics = await client.call('getMetrics');
  let text = '';
  for await (const chunk of metrics.body) text += String(chunk);
  t.regex(text, /^edgeml_devices_enrolled /m);

  const missing = await t.throwsAsync(client.call('getDevice', { params: { id: 'nosuch' } }));
  t.true(isEdgemlError(missing, ErrorCodes.HUB_DEVICE_NOT_FOUND), String(missing));
  const anonymous = new HubClient({ baseUrl: hub.url });
  const refused = await t.throwsAsync(anonymous.call('listDevices'));
  t.true(isEdgemlError(refused, ErrorCodes.HUB_UNAUTHENTICATED), String(refused));
});
