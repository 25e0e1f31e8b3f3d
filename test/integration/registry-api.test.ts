/**
 * The model registry and manifests through real HTTP against a running hub process.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import test from 'ava';
import { request } from 'undici';
import type { ApiKeyCreated, ApiKeyList, WhoAmI } from '../../shared/api/apikeys.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { AliasResult, ModelSummary, ModelVersion, ModelVersionList } from '../../shared/api/models.js';
import { spawnEdgeml, startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { api, blobFiles, download, sha256, type ErrorAnswer } from '../helpers/hub-api.js';
import { tarOf, type TarSpec } from '../helpers/tar.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

function upload(hub: HubProcess, name: string, bytes: Uint8Array, query = 'filename=model.bin', key: string | null = hub.adminKey) {
  return api<ModelVersion & ErrorAnswer>(hub, 'POST', `/api/v1/models/${name}/versions?${query}`, { key, body: bytes });
}


async function sha256sum(bytes: Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-sum-'));
  const file = join(dir, 'f');
  await writeFile(file, bytes);
  const { stdout } = await run('sha256sum', [file]);
  return `sha256:${stdout.split(' ')[0]}`;
}

test('file models: versions increment, digests match sha256sum, downloads are identical', async (t) => {
  const hub = await startHub(t);
  const first = Buffer.from('weights v1 '.repeat(1000));
  const second = Buffer.from('weights v2 '.repeat(1000));
  const one = await upload(hub, 'resnet', first, 'filename=model.onnx&framework=onnx&tag=team%3Dvision&metric=accuracy%3D0.91&runId=run-7&dataset=imagenet%402024');
  t.is(one.status, 201, JSON.stringify(one.body));
  t.like(one.body, { name: 'resnet', version: 1, kind: 'file', size: first.length, framework: 'onnx', tags: { team: 'vision' } });
  t.is(one.body.digest, await sha256sum(first));
  t.deepEqual(one.body.lineage, { runId: 'run-7', dataset: 'imagenet@2024', metrics: { accuracy: 0.91 } });
  t.deepEqual(one.body.files, [{ path: 'model.onnx', size: first.length, digest: one.body.digest }]);

  const two = await upload(hub, 'resnet', second, `filename=model.onnx&digest=${sha256(second)}`);
  t.is(two.status, 201);
  t.is(two.body.version, 2);
  t.is(two.body.digest, await sha256sum(second));

  const got = await download(hub, '/api/v1/models/resnet/versions/1/content', hub.adminKey);
  t.is(got.status, 200);
  t.true(got.bytes.equals(first));
  t.is(got.headers['x-edgeml-digest'], one.body.digest);
  const latest = await download(hub, '/api/v1/models/resnet/versions/latest/content', hub.adminKey);
  t.true(latest.bytes.equals(second));

  const byTag = await api<ModelVersionList>(hub, 'GET', '/api/v1/models?tag=team%3Dvision', { key: hub.adminKey });
  t.deepEqual(
    byTag.body.versions.map((v) => v.version),
    [1],
  );
  const mismatch = await upload(hub, 'resnet', first, `filename=model.onnx&digest=${sha256(second)}`);
  t.is(mismatch.status, 400);
  t.is(mismatch.body.error.code, 'HUB_E_DIGEST_MISMATCH');
  const summary = await api<ModelSummary>(hub, 'GET', '/api/v1/models/resnet', { key: hub.adminKey });
  t.is(summary.body.latest, 2, 'a rejected upload adds no version');
});

test('directory models: the tar is validated, listed and returned byte for byte', async (t) => {
  const hub = await startHub(t);
  const tar = await tarOf([
    { name: 'model/', type: 'directory' },
    { name: 'model/weights.bin', type: 'file', mode: 0o644, content: 'abc' },
    { name: 'model/config.json', type: 'file', mode: 0o644, content: '{"layers":3}' },
    { name: 'model/current', type: 'symlink', linkname: 'weights.bin' },
  ]);
  const res = await api<ModelVersion & ErrorAnswer>(hub, 'POST', '/api/v1/models/detector/versions', { key: hub.adminKey, body: tar, contentType: 'application/x-tar' });
  t.is(res.status, 201, JSON.stringify(res.body));
  t.is(res.body.kind, 'directory');
  t.is(res.body.digest, sha256(tar));
  t.deepEqual(
    res.body.files.map((f) => [f.path, f.size, f.digest]),
    [
      ['model/config.json', 12, sha256(Buffer.from('{"layers":3}'))],
      ['model/weights.bin', 3, sha256(Buffer.from('abc'))],
    ],
  );
  const got = await download(hub, '/api/v1/models/detector/versions/1/content', hub.adminKey);
  t.is(got.headers['content-type'], 'application/x-tar');
  t.true(got.bytes.equals(tar));
});

test('unsafe archives are refused with 400 and store nothing', async (t) => {
  const hub = await startHub(t);
  const cases: Array<[string, TarSpec[]]> = [
    ['../evil', [{ name: '../evil', type: 'file', content: 'x' }]],
    ['/etc/evil', [{ name: '/etc/evil', type: 'file', content: 'x' }]],
    ['link', [{ name: 'link', type: 'symlink', linkname: '../../etc/passwd' }]],
  ];
  for (const [entry, entries] of cases) {
    const res = await api<ErrorAnswer>(hub, 'POST', '/api/v1/models/evil/versions', { key: hub.adminKey, body: await tarOf(entries), contentType: 'application/x-tar' });
    t.is(res.status, 400, `${entry}: ${JSON.stringify(res.body)}`);
    t.is(res.body.error.code, 'EDGEML_E_ARCHIVE_INVALID');
    t.true(res.body.error.message.includes(entry), res.body.error.message);
  }
  t.is((await api(hub, 'GET', '/api/v1/models/evil', { key: hub.adminKey })).status, 404);
  t.deepEqual(await blobFiles(hub.data), { blobs: [], tmp: [] });
});

test('an archive without a single file is refused with 400 naming the problem, and stores nothing', async (t) => {
  const hub = await startHub(t);
  for (const entries of [[], [{ name: 'model/', type: 'directory' }]] as TarSpec[][]) {
    const res = await api<ErrorAnswer>(hub, 'POST', '/api/v1/models/hollow/versions', { key: hub.adminKey, body: await tarOf(entries), contentType: 'application/x-tar' });
    t.is(res.status, 400, JSON.stringify(res.body));
    t.is(res.body.error.code, 'EDGEML_E_ARCHIVE_INVALID');
    t.regex(res.body.error.message, /no files/);
  }
  t.is((await api(hub, 'GET', '/api/v1/models/hollow', { key: hub.adminKey })).status, 404);
  t.deepEqual(await blobFiles(hub.data), { blobs: [], tmp: [] });
});

test('aliases move; a referenced version cannot be deleted; versions are never reused', async (t) => {
  const hub = await startHub(t);
  for (const n of [1, 2, 3]) t.is((await upload(hub, 'fraud', Buffer.from(`v${n}`))).status, 201);
  const set = await api<AliasResult>(hub, 'PUT', '/api/v1/models/fraud/aliases/production', { key: hub.adminKey, json: { version: 1 } });
  t.deepEqual(set.body, { name: 'fraud', alias: 'production', version: 1, previous: null });
  const moved = await api<AliasResult>(hub, 'PUT', '/api/v1/models/fraud/aliases/production', { key: hub.adminKey, json: { version: 2 } });
  t.is(moved.body.previous, 1);
  const viaAlias = await api<ModelVersion>(hub, 'GET', '/api/v1/models/fraud/versions/%40production', { key: hub.adminKey });
  t.is(viaAlias.body.version, 2);
  t.deepEqual(viaAlias.body.aliases, ['production']);

  const blocked = await api<ErrorAnswer>(hub, 'DELETE', '/api/v1/models/fraud/versions/2', { key: hub.adminKey });
  t.is(blocked.status, 409);
  t.regex(blocked.body.error.message, /alias production/);

  const manifest = await api<ManifestVersion>(hub, 'POST', '/api/v1/manifests/fraud-scorer/versions', {
    key: hub.adminKey,
    json: {
      models: ['fraud:3'],
      runtime: 'node',
      score: { filename: 'score.js', content: 'export function run(x) { return x; }' },
      schema: { input: { type: 'object' }, output: { type: 'object' }, sample: {} },
    },
  });
  t.is(manifest.status, 201, JSON.stringify(manifest.body));
  const pinned = await api<ErrorAnswer>(hub, 'DELETE', '/api/v1/models/fraud/versions/3', { key: hub.adminKey });
  t.is(pinned.status, 409);
  t.regex(pinned.body.error.message, /manifest fraud-scorer:1/);

  t.is((await api(hub, 'DELETE', '/api/v1/models/fraud/versions/1', { key: hub.adminKey })).status, 204);
  t.is((await api(hub, 'GET', '/api/v1/models/fraud/versions/1', { key: hub.adminKey })).status, 404);
  t.is((await upload(hub, 'fraud', Buffer.from('v4'))).body.version, 4);
});

test('API key scopes: 401 without a key, 403 for a read key, whoami names the key, revoked keys stop working', async (t) => {
  const hub = await startHub(t);
  const mode = (await stat(join(hub.data, 'admin.key'))).mode & 0o777;
  t.is(mode, 0o600, 'admin.key is readable by its owner only');
  t.false(hub.logs.some((l) => JSON.stringify(l).includes(hub.adminKey)), 'the admin key is not in the log');

  const noKey = await upload(hub, 'm', Buffer.from('x'), 'filename=m.bin', null);
  t.is(noKey.status, 401);
  t.is(noKey.body.error.code, 'HUB_E_UNAUTHENTICATED');
  t.is((await api(hub, 'GET', '/api/v1/devices')).status, 401);
  t.is((await api(hub, 'GET', '/api/v1/models', { key: 'emk_000000000000_notakey' })).status, 401);
  t.is((await api(hub, 'GET', '/healthz')).status, 200, '/healthz is open');
  t.is((await api(hub, 'GET', '/openapi.json')).status, 200, '/openapi.json is open');

  const created = await api<ApiKeyCreated>(hub, 'POST', '/api/v1/apikeys', { key: hub.adminKey, json: { name: 'dashboard', scope: 'read' } });
  t.is(created.status, 201);
  const readKey = created.body.key;
  t.is((await api(hub, 'GET', '/api/v1/models', { key: readKey })).status, 200);
  const forbidden = await upload(hub, 'm', Buffer.from('x'), 'filename=m.bin', readKey);
  t.is(forbidden.status, 403);
  t.is(forbidden.body.error.code, 'HUB_E_FORBIDDEN');
  t.is((await api(hub, 'GET', '/api/v1/apikeys', { key: readKey })).status, 403);

  const listed = await api<ApiKeyList>(hub, 'GET', '/api/v1/apikeys', { key: hub.adminKey });
  t.deepEqual(listed.body.keys.map((k) => [k.name, k.scope]).sort(), [['admin (first start)', 'admin'], ['dashboard', 'read']]);
  t.false(JSON.stringify(listed.body).includes(readKey.slice(17)), 'listing never shows key secrets');

  // whoami: the calling key's id, name and scope, and nothing of its secret.
  const adminInfo = listed.body.keys.find((k) => k.scope === 'admin')!;
  const asAdmin = await api<WhoAmI>(hub, 'GET', '/api/v1/whoami', { key: hub.adminKey });
  t.is(asAdmin.status, 200);
  t.deepEqual(asAdmin.body, { id: adminInfo.id, name: 'admin (first start)', scope: 'admin' });
  const asReader = await api<WhoAmI>(hub, 'GET', '/api/v1/whoami', { key: readKey });
  t.deepEqual(asReader.body, { id: created.body.id, name: 'dashboard', scope: 'read' });
  t.is((await api(hub, 'GET', '/api/v1/whoami')).status, 401);

  t.is((await api(hub, 'DELETE', `/api/v1/apikeys/${created.body.id}`, { key: hub.adminKey })).status, 200);
  const revoked = await api<ErrorAnswer>(hub, 'GET', '/api/v1/models', { key: readKey });
  t.is(revoked.status, 401);
  t.regex(revoked.body.error.message, /revoked/);

  const last = await api<ErrorAnswer>(hub, 'DELETE', `/api/v1/apikeys/${adminInfo.id}`, { key: hub.adminKey });
  t.is(last.status, 409, 'the last admin key cannot be revoked');
});

test('uploads over the limit get 413; an upload cut off midway leaves no version and no blob', async (t) => {
  const hub = await startHub(t, ['--max-upload', '64k']);
  const big = await upload(hub, 'big', Buffer.alloc(100 * 1024, 1));
  t.is(big.status, 413);
  t.is(big.body.error.code, 'HUB_E_PAYLOAD_TOO_LARGE');
  const [host, port] = [hub.http.slice(0, hub.http.lastIndexOf(':')), Number(hub.http.slice(hub.http.lastIndexOf(':') + 1))];

  // Without a content-length the limit is found while streaming. This client keeps writing after
  // the answer, as an upload in full flow does: it still reads the 413, because the hub discards
  // what follows instead of resetting the connection, and the hub cuts it once it has discarded
  // its bound (16 MiB) rather than reading all 64 MiB.
  const overLimit = connect(port, host);
  let raw = '';
  overLimit.on('data', (d: Buffer) => (raw += d.toString()));
  overLimit.on('error', () => undefined);
  const closed = new Promise((resolve) => overLimit.once('close', resolve));
  overLimit.write(
    `POST /api/v1/models/big/versions?filename=m.bin HTTP/1.1\r\nHost: ${hub.http}\r\nAuthorization: Bearer ${hub.adminKey}\r\n` +
      'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n',
  );
  const chunk = Buffer.alloc(64 * 1024, 3);
  const total = 64 * 1024 * 1024;
  let sent = 0;
  while (sent < total && !overLimit.destroyed) {
    overLimit.write(`${chunk.length.toString(16)}\r\n`);
    overLimit.write(chunk);
    const flowing = overLimit.write('\r\n');
    sent += chunk.length;
    if (!flowing) await Promise.race([new Promise((resolve) => overLimit.once('drain', resolve)), closed]);
  }
  await closed;
  t.regex(raw, /^HTTP\/1\.1 413 /);
  t.regex(raw, /HUB_E_PAYLOAD_TOO_LARGE/);
  t.true(sent < total, `the hub cut a client that kept sending (it took ${sent} bytes)`);

  // A raw socket: announce 50 KB, send 20 KB, then vanish.
  const socket = connect(port, host);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(
    `POST /api/v1/models/cut/versions?filename=m.bin HTTP/1.1\r\nHost: ${hub.http}\r\nAuthorization: Bearer ${hub.adminKey}\r\n` +
      'Content-Type: application/octet-stream\r\nContent-Length: 51200\r\n\r\n',
  );
  socket.write(Buffer.alloc(20 * 1024, 2));
  await waitFor('the partial upload to reach the blob store', async () => (await blobFiles(hub.data)).tmp.length === 1);
  socket.destroy();
  await waitFor('the partial upload to be discarded', async () => (await blobFiles(hub.data)).tmp.length === 0);
  t.deepEqual(await blobFiles(hub.data), { blobs: [], tmp: [] });
  t.is((await api(hub, 'GET', '/api/v1/models/cut', { key: hub.adminKey })).status, 404);
  t.is((await api(hub, 'GET', '/api/v1/models/big', { key: hub.adminKey })).status, 404);
  await hub.waitForLog('the cut-off upload noted', (l) => l.msg === 'client closed the connection before the request was complete');
  t.deepEqual(
    hub.logs.filter((l) => l.level === 'error'),
    [],
    'a client going away is not a hub error',
  );
});

test('kill -9 right after an acknowledged registration: the version survives with its digest', async (t) => {
  const data = await tempDir(t, 'edgeml-hub-');
  const hub = await startHub(t, [], { data });
  const bytes = Buffer.from('durable weights '.repeat(500));
  const res = await upload(hub, 'durable', bytes);
  t.is(res.status, 201);
  await hub.kill('SIGKILL');

  const again = await startHub(t, [], { data });
  t.is(again.adminKey, hub.adminKey, 'no new admin key on restart');
  const version = await api<ModelVersion>(again, 'GET', '/api/v1/models/durable/versions/1', { key: again.adminKey });
  t.is(version.status, 200);
  t.is(version.body.digest, res.body.digest);
  const got = await download(again, '/api/v1/models/durable/versions/1/content', again.adminKey);
  t.true(got.bytes.equals(bytes));
});

test('twenty parallel registrations of one name get versions 1..20 exactly', async (t) => {
  const hub = await startHub(t);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => upload(hub, 'burst', Buffer.from(`payload ${i}`))));
  t.true(answers.every((a) => a.status === 201));
  t.deepEqual(
    answers.map((a) => a.body.version).sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  const listed = await api<ModelVersionList>(hub, 'GET', '/api/v1/models?name=burst', { key: hub.adminKey });
  t.deepEqual(
    listed.body.versions.map((v) => v.version),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  // Each version's bytes are the ones its answer claimed.
  for (const a of answers) {
    const got = await download(hub, `/api/v1/models/burst/versions/${a.body.version}/content`, hub.adminKey);
    t.is(sha256(got.bytes), a.body.digest);
  }
});

test('manifest validation names the failing part; a valid manifest pins model digests', async (t) => {
  const hub = await startHub(t);
  const model = await upload(hub, 'iris', Buffer.from('iris weights'), 'filename=iris.onnx');
  await api(hub, 'PUT', '/api/v1/models/iris/aliases/production', { key: hub.adminKey, json: { version: 1 } });
  const good = {
    models: ['iris@production'],
    runtime: 'node',
    score: { filename: 'score.js', content: 'export async function init() {}\nexport function run(input) { return { label: "setosa" }; }\n' },
    schema: {
      input: { type: 'object', properties: { features: { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 4 } }, required: ['features'] },
      output: { type: 'object', properties: { label: { type: 'string' } } },
      sample: { features: [5.1, 3.5, 1.4, 0.2] },
    },
    deps: { filename: 'package.json', content: '{"dependencies":{}}' },
    env: { LOG_LEVEL: 'info' },
  };
  const create = (body: unknown) => api<ManifestVersion & ErrorAnswer>(hub, 'POST', '/api/v1/manifests/iris-scorer/versions', { key: hub.adminKey, json: body });

  const bad: Array<[string, unknown, RegExp]> = [
    ['sample', { ...good, schema: { ...good.schema, sample: { features: [1, 2] } } }, /schema\.sample does not match schema\.input: sample\.features/],
    ['input', { ...good, schema: { ...good.schema, input: { type: 'tensor' } } }, /schema\.input: is not a valid JSON Schema/],
    ['output', { ...good, schema: { input: good.schema.input, sample: good.schema.sample } }, /schema\.output: is required/],
    ['runtime', { ...good, runtime: 'java' }, /body\.runtime: must be one of "node", "python"/],
    ['score', { ...good, score: { filename: 'score.js', content: '  \n' } }, /score: score\.js is empty/],
    ['score kind', { ...good, runtime: 'python' }, /score: the python runtime runs a \.py file/],
    ['model', { ...good, models: ['iris:9'] }, /models: iris:9: model iris:9 not found/],
    ['deps', { ...good, deps: { filename: 'package.json', content: '{oops' } }, /deps: package\.json is not valid JSON/],
    ['unknown field', { ...good, extra: true }, /body\.extra: is not a known field/],
    ['reserved env', { ...good, env: { PORT: '9999' } }, /env: PORT is set by the scoring runtime/],
  ];
  for (const [part, body, message] of bad) {
    const res = await create(body);
    t.is(res.status, 400, `${part}: ${JSON.stringify(res.body)}`);
    t.regex(res.body.error.message, message, part);
  }
  t.is((await api(hub, 'GET', '/api/v1/manifests/iris-scorer/versions/latest', { key: hub.adminKey })).status, 404, 'no invalid manifest was stored');

  const created = await create(good);
  t.is(created.status, 201, JSON.stringify(created.body));
  t.like(created.body, { name: 'iris-scorer', version: 1, runtime: 'node', env: { LOG_LEVEL: 'info' } });
  t.deepEqual(created.body.models, [{ name: 'iris', version: 1, digest: model.body.digest }]);
  t.is(created.body.score.digest, sha256(Buffer.from(good.score.content)));
  t.regex(created.body.digest, /^sha256:[0-9a-f]{64}$/);
  const again = await create(good);
  t.is(again.body.version, 2);
  t.is(again.body.digest, created.body.digest, 'the same content has the same manifest digest');
});

test('/openapi.json documents every /api/v1 route with its schema and API key security', async (t) => {
  const hub = await startHub(t);
  const doc = (await api<{ paths: Record<string, Record<string, { security?: unknown; requestBody?: unknown; description?: string }>> }>(hub, 'GET', '/openapi.json')).body;
  const apiPaths = Object.keys(doc.paths).filter((p) => p.startsWith('/api/v1'));
  for (const p of ['/api/v1/models/{name}/versions', '/api/v1/manifests/{name}/versions', '/api/v1/apikeys', '/api/v1/models/{name}/aliases/{alias}']) t.true(apiPaths.includes(p), p);
  for (const p of apiPaths) {
    for (const [method, op] of Object.entries(doc.paths[p]!)) {
      // The hub's CA and its revocation list are public on purpose: `security: []` says so.
      const open = p === '/api/v1/ca' || p === '/api/v1/ca/crl';
      t.true(Array.isArray(op.security), `${method} ${p} states its security`);
      t.is((op.security as unknown[]).length === 0, open, `${method} ${p} ${open ? 'is public' : 'needs an API key'}`);
      t.regex(op.description ?? '', /scope/, `${method} ${p} states its scope`);
    }
  }
  t.truthy(doc.paths['/api/v1/models/{name}/versions']!.post!.requestBody, 'the upload body is documented');
  t.truthy(doc.paths['/api/v1/manifests/{name}/versions']!.post!.requestBody);
  const ui = await request(`${hub.url}/docs/`);
  t.is(ui.statusCode, 200, 'Swagger UI is served, without a key');
  t.regex(await ui.body.text(), /swagger/i);
});

test('HEAD of a model download gives its headers without reading the blob', async (t) => {
  const hub = await startHub(t);
  const bytes = Buffer.alloc(256 * 1024, 9);
  const up = await upload(hub, 'headed', bytes);
  const res = await request(`${hub.url}/api/v1/models/headed/versions/1/content`, { method: 'HEAD', headers: { authorization: `Bearer ${hub.adminKey}` } });
  t.is(res.statusCode, 200);
  t.is(res.headers['content-length'], String(bytes.length));
  t.is(res.headers['x-edgeml-digest'], up.body.digest);
  t.is((await request(`${hub.url}/api/v1/models/headed/versions/1/content`, { method: 'HEAD' })).statusCode, 401, 'HEAD needs the key too');
});

test('JSON bodies are taken as sent: no type coercion, unknown fields refused', async (t) => {
  const hub = await startHub(t);
  await upload(hub, 'strict', Buffer.from('x'));
  for (const body of [{ version: '1' }, { version: [1] }, { version: 1, extra: true }]) {
    const res = await api<ErrorAnswer>(hub, 'PUT', '/api/v1/models/strict/aliases/prod', { key: hub.adminKey, json: body });
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, 'HUB_E_INVALID_REQUEST');
  }
  const unknownQuery = await upload(hub, 'strict', Buffer.from('y'), 'filename=m.bin&colour=blue');
  t.is(unknownQuery.status, 400);
  t.regex(unknownQuery.body.error.message, /querystring\.colour: is not a known field/);
});

test('a second hub over the same data directory is refused and the first keeps working', async (t) => {
  const hub = await startHub(t);
  const second = spawnEdgeml(t, ['hub', 'start', '--data', hub.data, '--http', '127.0.0.1:0', '--mqtt', '127.0.0.1:0']);
  t.is(await second.exited(), 1);
  t.regex(second.rawOutput.join('\n'), /another hub \(pid \d+\) is using the data directory .*\[HUB_E_DATA_LOCKED\]/);
  const res = await upload(hub, 'still-here', Buffer.from('ok'));
  t.is(res.status, 201);
  t.deepEqual((await blobFiles(hub.data)).tmp, []);
});

test('a schema whose pattern backtracks forever is cut off, and the hub keeps answering meanwhile', async (t) => {
  const hub = await startHub(t);
  await upload(hub, 'redos', Buffer.from('x'));
  const evil = {
    models: ['redos:1'],
    runtime: 'node',
    score: { filename: 'score.js', content: 'export function run(x) { return x; }' },
    schema: { input: { type: 'string', pattern: '^(a+)+$' }, output: {}, sample: `${'a'.repeat(40)}!` },
  };
  let checked = false;
  const pending = api<ErrorAnswer>(hub, 'POST', '/api/v1/manifests/redos/versions', { key: hub.adminKey, json: evil }).finally(() => {
    checked = true;
  });
  await new Promise((r) => setTimeout(r, 300));
  t.is((await api(hub, 'GET', '/healthz')).status, 200);
  t.false(checked, 'the hub answered /healthz while the schema check was still running');
  const res = await pending;
  t.is(res.status, 400);
  t.regex(res.body.error.message, /took longer than/);
});
