/**
 * Creates are safely retryable: a POST with an `Idempotency-Key` that committed but whose answer
 * was lost (the hub killed) gets its original outcome on a retry with the same key, after the hub
 * restarts, secret included; a different request under the same key is refused.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { ModelVersion, ModelVersionList } from '../../shared/api/models.js';
import { cleanEnv, jsonOf, runCli } from '../helpers/cli.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { waitFor } from '../helpers/wait.js';

const IMAGE = `127.0.0.1:5000/edgeml-test/iris@sha256:${'1'.repeat(64)}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface Answer<T> {
  status: number;
  replayed: string | undefined;
  text: string;
  body: T;
}

async function post<T>(hub: HubProcess, path: string, idempotencyKey: string | undefined, body: { json: unknown } | { bytes: Buffer; query: string }): Promise<Answer<T>> {
  const headers: Record<string, string> = { authorization: `Bearer ${hub.adminKey}` };
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  const isJson = 'json' in body;
  headers['content-type'] = isJson ? 'application/json' : 'application/octet-stream';
  const res = await request(`${hub.url}${path}${isJson ? '' : `?${body.query}`}`, { method: 'POST', headers, body: isJson ? JSON.stringify(body.json) : body.bytes });
  const text = await res.body.text();
  const replayed = res.headers['idempotent-replayed'];
  return { status: res.statusCode, replayed: typeof replayed === 'string' ? replayed : undefined, text, body: JSON.parse(text) as T };
}

async function storedDeployment(data: string, service: string): Promise<{ keyHash: string } | undefined> {
  try {
    const stored = JSON.parse(await readFile(join(data, 'hub.json'), 'utf8')) as { deployments?: Record<string, { keyHash: string }> };
    return stored.deployments?.[service];
  } catch {
    // mid-rename or not written yet
    return undefined;
  }
}

test('a deploy committed just before the hub is killed answers its outcome, with its key, to a retry after the restart', async (t) => {
  const first = await startHub(t);
  const key = randomUUID();
  const deployment = { service: 'iris', image: IMAGE, target: { site: 'lab' } };
  // The answer is lost: the hub dies as soon as the deployment is in its store file.
  const lost = post<DeploymentCreated>(first, '/api/v1/deployments', key, { json: deployment }).catch(() => undefined);
  await waitFor('the deployment to be stored', () => storedDeployment(first.data, 'iris'), 15_000, 5);
  await first.kill('SIGKILL');
  const original = await lost;

  const hub = await startHub(t, [], { data: first.data });
  const retry = await post<DeploymentCreated>(hub, '/api/v1/deployments', key, { json: deployment });
  t.is(retry.status, 201, retry.text);
  t.is(retry.replayed, 'true');
  t.regex(retry.body.key, /^ems_[A-Za-z0-9_-]{43}$/);
  t.like(retry.body, { service: 'iris', revision: 1, image: IMAGE });
  if (original?.status === 201) t.is(retry.body.key, original.body.key, 'the same key as the answer that was lost');
  // The key works: its hash is what devices check requests against.
  t.is(sha256(retry.body.key), (await storedDeployment(hub.data, 'iris'))!.keyHash);
  t.false(retry.text.includes(key), 'the idempotency key is not shown in the answer');

  const again = await post<DeploymentCreated>(hub, '/api/v1/deployments', key, { json: deployment });
  t.is(again.body.key, retry.body.key);

  const other = await post<{ error: { code: string } }>(hub, '/api/v1/deployments', key, { json: { ...deployment, target: { site: 'field' } } });
  t.is(other.status, 422, other.text);
  t.is(other.body.error.code, 'HUB_E_IDEMPOTENCY_MISMATCH');

  // Without the key it is an ordinary second deploy of the name.
  const plain = await post<{ error: { code: string } }>(hub, '/api/v1/deployments', undefined, { json: deployment });
  t.is(plain.status, 409, plain.text);
  t.is(plain.replayed, undefined);
});

test('a model upload retried with the same key registers one version; a bad key is refused', async (t) => {
  const hub = await startHub(t);
  const key = randomUUID();
  const bytes = Buffer.from('model bytes\n');
  const upload = () => post<ModelVersion>(hub, '/api/v1/models/iris/versions', key, { bytes, query: 'filename=model.bin' });
  const first = await upload();
  t.is(first.status, 201, first.text);
  t.is(first.replayed, undefined);
  const retry = await upload();
  t.is(retry.status, 201, retry.text);
  t.is(retry.replayed, 'true');
  t.like(retry.body, { name: 'iris', version: first.body.version, digest: first.body.digest });

  const versions = await request(`${hub.url}/api/v1/models?name=iris`, { headers: { authorization: `Bearer ${hub.adminKey}` } });
  t.is(((await versions.body.json()) as ModelVersionList).versions.length, 1);

  const changed = await post<{ error: { code: string } }>(hub, '/api/v1/models/iris/versions', key, { bytes, query: 'filename=other.bin' });
  t.is(changed.status, 422, changed.text);

  // Documented on every creating POST, with its 422.
  const doc = (await (await request(`${hub.url}/openapi.json`)).body.json()) as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }>; responses: Record<string, unknown> }>> };
  for (const path of ['/api/v1/apikeys', '/api/v1/deployments', '/api/v1/deployments/{service}/update', '/api/v1/deployments/{service}/rotate-key', '/api/v1/devices', '/api/v1/images', '/api/v1/manifests/{name}/versions', '/api/v1/models/{name}/versions']) {
    const op = doc.paths[path]!['post']!;
    t.true(op.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key'), path);
    t.truthy(op.responses['422'], path);
  }

  for (const bad of ['', 'x'.repeat(256), 'with space', 'é']) {
    const refused = await post<{ error: { code: string } }>(hub, '/api/v1/models/iris/versions', bad, { bytes, query: 'filename=model.bin' }).catch((err: unknown) => ({ status: 0, text: String(err), body: { error: { code: '' } } }));
    // undici itself refuses a non-ASCII header value; the others reach the hub.
    if (refused.status !== 0) t.is(refused.status, 400, `${JSON.stringify(bad)}: ${refused.text}`);
  }
});

test('service rotate-key: a new key, the old one kept for the grace; retried with the same key it rotates once', async (t) => {
  const hub = await startHub(t);
  const created = await post<DeploymentCreated>(hub, '/api/v1/deployments', undefined, { json: { service: 'iris', image: IMAGE, target: { site: 'lab' } } });
  t.is(created.status, 201, created.text);
  const key = randomUUID();
  const rotate = () => post<DeploymentCreated & { previousKeyValidUntil: string | null }>(hub, '/api/v1/deployments/iris/rotate-key', key, { json: { grace: '1h' } });
  const rotated = await rotate();
  t.is(rotated.status, 200, rotated.text);
  t.not(rotated.body.key, created.body.key);
  t.regex(rotated.body.key, /^ems_[A-Za-z0-9_-]{43}$/);
  const until = Date.parse(rotated.body.previousKeyValidUntil!);
  t.true(Math.abs(until - Date.now() - 3_600_000) < 60_000, rotated.body.previousKeyValidUntil!);
  const stored = (await storedDeployment(hub.data, 'iris')) as { keyHash: string; previousKeys?: Array<{ keyHash: string; until: string }> };
  t.is(stored.keyHash, sha256(rotated.body.key));
  t.deepEqual(stored.previousKeys, [{ keyHash: sha256(created.body.key), until: rotated.body.previousKeyValidUntil! }]);

  const retried = await rotate();
  t.is(retried.replayed, 'true');
  t.is(retried.body.key, rotated.body.key);
  t.is((await storedDeployment(hub.data, 'iris'))!.keyHash, stored.keyHash, 'rotated once');

  const tooLong = await post<{ error: { code: string } }>(hub, '/api/v1/deployments/iris/rotate-key', undefined, { json: { grace: '8d' } });
  t.is(tooLong.status, 400, tooLong.text);

  const cli = await runCli(['service', 'rotate-key', 'iris', '--grace', '0s', '--json'], { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey });
  const summary = jsonOf<{ service: string; key: string; keyId: string; previousKeyValidUntil: string | null }>(t, cli);
  t.deepEqual(Object.keys(summary).sort(), ['key', 'keyId', 'previousKeyValidUntil', 'service']);
  t.is(summary.previousKeyValidUntil, null);
  const after = (await storedDeployment(hub.data, 'iris')) as { keyHash: string; previousKeys?: unknown[] };
  t.is(after.keyHash, sha256(summary.key));
  t.deepEqual(after.previousKeys, [], 'no grace for this one ends the earlier grace too');
});
