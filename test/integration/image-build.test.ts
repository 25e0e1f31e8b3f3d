/**
 * The hub's image builder against the real thing: a hub process builds manifests with docker buildx
 * for linux/amd64 and linux/arm64, pushes one index to the rig's registry, smoke-tests each
 * platform (arm64 under QEMU), and records the outcome; driven through the CLI and the REST API.
 * Each hub pushes under its own repository prefix, removed from the registry afterwards.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { FINISHED_STATUSES, type Image, type ImageList } from '../../shared/api/images.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/iris-onnx/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const PLATFORMS = ['linux/amd64', 'linux/arm64'];
/** A cold build of the example for two platforms (one emulated) plus both smoke tests. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

interface BuildHub {
  hub: HubProcess;
  cli: ReturnType<typeof cliFor>;
  registry: string;
  prefix: string;
}

async function removePushedImages(hub: HubProcess, registry: string): Promise<void> {
  const list = await api<ImageList>(hub, 'GET', '/api/v1/images', { key: hub.adminKey }).catch(() => undefined);
  for (const image of list?.body.images ?? []) {
    const repo = image.repository.slice(registry.length + 1);
    for (const tag of image.tags) await deleteFromRegistry(registry, repo, tag).catch(() => undefined);
  }
}

async function startBuildHub(t: ExecutionContext, opts: { data?: string; prefix?: string; args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<BuildHub> {
  const { registry } = rig();
  const prefix = opts.prefix ?? `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry, ...(opts.args ?? [])], {
    ...(opts.data ? { data: opts.data } : {}),
    env: { EDGEML_HUB_IMAGE_PREFIX: prefix, ...opts.env },
  });
  t.teardown(() => removePushedImages(hub, registry));
  return { hub, cli: cliFor(hub, hub.adminKey, BUILD_TIMEOUT_MS), registry, prefix };
}

async function buildLog(hub: HubProcess, id: number): Promise<string> {
  const res = await request(`${hub.url}/api/v1/images/${id}/log`, { headers: { authorization: `Bearer ${hub.adminKey}` } });
  return res.body.text();
}

/** `image build --json`, with the build log in the assertion message when it did not succeed. */
async function buildWithCli(t: ExecutionContext, b: BuildHub, ...args: string[]): Promise<Image> {
  const r = await b.cli('image', 'build', ...args, '--json');
  const image = JSON.parse(r.stdout || 'null') as Image | null;
  if (image?.status !== 'succeeded') t.log((await buildLog(b.hub, image?.id ?? 1)).split('\n').slice(-60).join('\n'));
  t.is(r.code, 0, r.stderr);
  t.is(image?.status, 'succeeded');
  return image!;
}

async function registerFixtureModel(b: BuildHub, t: ExecutionContext): Promise<void> {
  jsonOf(t, await b.cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
}

/** A manifest of a fixture app (test/fixtures/runtimes/RUNTIME/APP) on the fixture model. */
function fixtureManifest(t: ExecutionContext, b: BuildHub, name: string, runtime: 'node' | 'python', app: string): Promise<void> {
  const score = join(FIXTURES, runtime, app, runtime === 'node' ? 'score.js' : 'score.py');
  return createManifest(t, b, name, ['--model', 'iris-linear:1', '--runtime', runtime, '--score', score, '--schema', join(FIXTURES, 'schema.json')]);
}

async function createManifest(t: ExecutionContext, b: BuildHub, name: string, args: string[]): Promise<void> {
  jsonOf(t, await b.cli('manifest', 'create', name, ...args, '--json'));
}

/** Runs a platform's image with host networking on a loopback port it picks; returns its URL. */
async function runImage(t: ExecutionContext, ref: string, platform: string): Promise<string> {
  const started = await exec('docker', ['run', '-d', '--rm', '--network', 'host', '--platform', platform, '-e', 'PORT=0', ref]);
  t.is(started.code, 0, started.stderr);
  const id = started.stdout.trim();
  t.teardown(() => exec('docker', ['rm', '-f', id]).then(() => undefined));
  const port = await waitFor(
    `${platform} container to listen`,
    async () => {
      const logs = await exec('docker', ['logs', id]);
      return /"msg":"listening".*"port":(\d+)/.exec(logs.stdout + logs.stderr)?.[1];
    },
    120_000,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${platform} /health`, async () => (await request(`${url}/health`)).statusCode === 200, 120_000);
  return url;
}

async function layers(registry: string, repo: string, digest: string): Promise<string[]> {
  const res = await request(`http://${registry}/v2/${repo}/manifests/${digest}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  const body = (await res.body.json()) as { layers: Array<{ digest: string }> };
  return body.layers.map((l) => l.digest);
}

const FLOWERS: Array<[number[], string]> = [
  [[5.1, 3.5, 1.4, 0.2], 'setosa'],
  [[5.9, 3.0, 4.2, 1.5], 'versicolor'],
  [[6.7, 3.0, 5.2, 2.3], 'virginica'],
];

test('the ONNX example: image build for amd64 and arm64, smoke-tested on both; a new model version reuses every layer below the models', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS * 2);
  const b = await startBuildHub(t);
  const work = await tempDir(t, 'edgeml-build-');
  jsonOf(t, await b.cli('model', 'register', 'iris', join(EXAMPLE, 'model'), '--framework', 'onnx', '--json'));
  const example = (file: string) => join(EXAMPLE, file);
  const manifestArgs = ['--runtime', 'node', '--score', example('score.js'), '--schema', example('schema.json'), '--deps', example('package.json')];
  await createManifest(t, b, 'iris-onnx', ['--model', 'iris:1', ...manifestArgs]);

  let started = Date.now();
  const image = await buildWithCli(t, b, 'iris-onnx');
  t.log(`first build: ${Date.now() - started} ms (hub: ${image.durationMs} ms)`);
  const repo = `${b.prefix}/iris-onnx`;
  t.like(image, { manifest: { name: 'iris-onnx', version: 1 }, repository: `${b.registry}/${repo}`, tags: ['v1'], ref: `${b.registry}/${repo}@${image.digest}`, error: null });
  t.deepEqual(Object.keys(image.platforms).sort(), PLATFORMS);
  for (const platform of PLATFORMS) {
    t.regex(image.platforms[platform] ?? '', /^sha256:[0-9a-f]{64}$/, platform);
    t.true((image.sizes[platform] ?? 0) > 10_000_000, `${platform} size ${image.sizes[platform]}`);
    t.is(image.checks[platform]?.status, 'passed', platform);
    t.regex(image.checks[platform]?.output ?? '', /POST \/score → 200 .*setosa/, `${platform}: the check scored the sample`);
  }

  const index = await exec('docker', ['buildx', 'imagetools', 'inspect', '--raw', image.ref!]);
  const platformsInIndex = (JSON.parse(index.stdout) as { manifests: Array<{ platform: { os: string; architecture: string } }> }).manifests.map(
    (m) => `${m.platform.os}/${m.platform.architecture}`,
  );
  t.deepEqual(platformsInIndex.sort(), PLATFORMS, 'the registry holds one index with both platforms');
  const config = await exec('docker', ['buildx', 'imagetools', 'inspect', '--format', '{{json .Image}}', image.ref!]);
  t.regex(config.stdout, new RegExp(`"io.edgeml.manifest.digest":\\s*"${image.manifest.digest}"`), 'the image names its manifest');
  t.regex(config.stdout, /"io\.edgeml\.models":\s*"\[\{\\"name\\":\\"iris\\",\\"version\\":1,/, 'and its model version');

  for (const platform of PLATFORMS) {
    const url = await runImage(t, `${b.registry}/${repo}@${image.platforms[platform]!}`, platform);
    for (const [features, label] of FLOWERS) {
      const res = await request(`${url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features: [features] }) });
      const body = (await res.body.json()) as { predictions: Array<{ label: string }> };
      t.is(res.statusCode, 200, `${platform}: ${JSON.stringify(body)}`);
      t.is(body.predictions[0]?.label, label, `${platform}: ${features.join(',')}`);
    }
    const swagger = JSON.stringify(await (await request(`${url}/swagger.json`)).body.json());
    t.regex(swagger, /"maxItems":64/, `${platform}: /swagger.json carries the input schema`);
  }

  // A new model version (the same files plus a model card) rebuilds only the model layer.
  const modelDir = join(work, 'model-v2');
  await cp(join(EXAMPLE, 'model'), modelDir, { recursive: true });
  await writeFile(join(modelDir, 'CARD.md'), 'iris, retrained\n');
  jsonOf(t, await b.cli('model', 'register', 'iris', modelDir, '--framework', 'onnx', '--json'));
  await createManifest(t, b, 'iris-onnx', ['--model', 'iris:2', ...manifestArgs]);
  started = Date.now();
  const rebuilt = await buildWithCli(t, b, 'iris-onnx:2', '--tag', 'stable');
  t.log(`rebuild after a new model version: ${Date.now() - started} ms (hub: ${rebuilt.durationMs} ms)`);
  t.deepEqual(rebuilt.tags, ['v2', 'stable']);
  for (const platform of PLATFORMS) {
    const before = await layers(b.registry, repo, image.platforms[platform]!);
    const after = await layers(b.registry, repo, rebuilt.platforms[platform]!);
    t.is(after.length, before.length);
    t.deepEqual(after.slice(0, -1), before.slice(0, -1), `${platform}: every layer below the models is reused`);
    t.not(after.at(-1), before.at(-1), `${platform}: the model layer is new`);
  }
});

test('a python manifest (numpy model) built through the REST API: queued, progress while building, both platforms pass', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const b = await startBuildHub(t);
  await registerFixtureModel(b, t);
  await fixtureManifest(t, b, 'iris-python', 'python', 'linear');
  const queued = await api<Image>(b.hub, 'POST', '/api/v1/images', { key: b.hub.adminKey, json: { manifest: 'iris-python' } });
  t.is(queued.status, 202);
  t.like(queued.body, { status: 'queued', manifest: { name: 'iris-python', version: 1 }, runtime: 'python', ref: null });

  const seen = new Set<string>();
  let sawProgress = false;
  const done = await waitFor(
    'the python build to finish',
    async () => {
      const image = (await api<Image>(b.hub, 'GET', `/api/v1/images/${queued.body.id}`, { key: b.hub.adminKey })).body;
      seen.add(image.status);
      if (image.progress && image.status !== 'queued') sawProgress = true;
      return FINISHED_STATUSES.includes(image.status) ? image : undefined;
    },
    BUILD_TIMEOUT_MS,
    500,
  );
  t.is(done.status, 'succeeded', (await buildLog(b.hub, done.id)).slice(-3000));
  t.true(sawProgress, 'a running build reports progress');
  t.true(seen.has('building') || seen.has('testing'), [...seen].join(','));
  t.is(done.progress, null);
  for (const platform of PLATFORMS) t.regex(done.checks[platform]?.output ?? '', /POST \/score → 200 .*"class": ?"setosa"/, platform);
  const log = await buildLog(b.hub, done.id);
  t.regex(log, /edgeml: testing linux\/arm64/);
  t.regex(log, /edgeml: image \d+ succeeded/);
});

test('a score.js with a syntax error: the image is pushed but marked failed, naming the platform, the file and the line; the log shows why', async (t) => {
  const b = await startBuildHub(t);
  await registerFixtureModel(b, t);
  await fixtureManifest(t, b, 'broken', 'node', 'syntax-error');
  const r = await b.cli('image', 'build', 'broken', '--platform', 'linux/amd64', '--json');
  t.is(r.code, 1, r.stderr);
  const image = JSON.parse(r.stdout) as Image;
  t.is(image.status, 'failed');
  t.is(image.error?.code, 'HUB_E_IMAGE_TEST_FAILED');
  t.regex(image.error?.message ?? '', /linux\/amd64/);
  t.truthy(image.ref, 'the image was built and pushed: only its check failed');
  const check = image.checks['linux/amd64']!;
  t.is(check.status, 'failed');
  t.regex(check.message, /^\/health says failed: cannot load \/opt\/edgeml\/app\/score\.js: SyntaxError: /);
  t.regex(check.output, /scoring module failed to load/, 'the container output is kept');
  t.regex(r.stderr, /SyntaxError/, 'the CLI says why');

  const log = await b.cli('image', 'log', String(image.id));
  t.is(log.code, 0, log.stderr);
  t.regex(log.stdout, /linux\/amd64: failed: \/health says failed: .*SyntaxError/);
  const shown = jsonOf<Image>(t, await b.cli('image', 'show', String(image.id), '--json'));
  t.is(shown.status, 'failed');
  const leftovers = await exec('docker', ['ps', '-aq', '--filter', 'label=io.edgeml.smoke-test.hub', '--filter', `name=-${image.id}-linux-amd64`]);
  t.is(leftovers.stdout.trim(), '', 'the smoke-test container is removed');
});

test('cancel stops a running build; a hub killed mid-build runs it again after the restart and it succeeds', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const data = await tempDir(t, 'edgeml-hub-');
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const b = await startBuildHub(t, { data, prefix });
  await registerFixtureModel(b, t);
  await fixtureManifest(t, b, 'py', 'python', 'linear');
  // The same app whose init() waits for a file that never comes: its smoke test cannot pass, so the
  // build is still running when the cancel arrives, however fast a warm build cache makes the rest.
  const score = join(FIXTURES, 'python', 'linear', 'score.py');
  await createManifest(t, b, 'py-stuck', ['--model', 'iris-linear:1', '--runtime', 'python', '--score', score, '--schema', join(FIXTURES, 'schema.json'), '--env', 'FIXTURE_INIT_GATE=/nonexistent/never']);

  const first = jsonOf<Image>(t, await b.cli('image', 'build', 'py-stuck', '--platform', 'linux/amd64', '--no-wait', '--json'));
  t.is(first.status, 'queued');
  await waitFor('build 1 to start', async () => ['building', 'testing'].includes((await api<Image>(b.hub, 'GET', `/api/v1/images/${first.id}`, { key: b.hub.adminKey })).body.status));
  const cancelled = jsonOf<Image>(t, await b.cli('image', 'cancel', String(first.id), '--json'));
  t.like(cancelled, { status: 'cancelled', error: { code: 'HUB_E_BUILD_CANCELLED' } });
  t.regex(await buildLog(b.hub, first.id), /edgeml: image \d+ cancelled/);
  const again = await b.cli('image', 'cancel', String(first.id));
  t.is(again.code, 1);
  t.regex(again.stderr, /HUB_E_CONFLICT/);

  const second = jsonOf<Image>(t, await b.cli('image', 'build', 'py', '--platform', 'linux/amd64', '--no-wait', '--json'));
  await b.hub.waitForLog('build 2 started', (l) => l.msg === 'image build started' && l.image === second.id);
  await b.hub.kill('SIGKILL');

  const restarted = await startBuildHub(t, { data, prefix });
  const done = await waitFor(
    'the interrupted build to finish after the restart',
    async () => {
      const image = (await api<Image>(restarted.hub, 'GET', `/api/v1/images/${second.id}`, { key: restarted.hub.adminKey })).body;
      return FINISHED_STATUSES.includes(image.status) ? image : undefined;
    },
    BUILD_TIMEOUT_MS,
    1000,
  );
  t.like(done, { status: 'succeeded', attempts: 2 });
  t.is((await api<Image>(restarted.hub, 'GET', `/api/v1/images/${first.id}`, { key: restarted.hub.adminKey })).body.status, 'cancelled', 'a cancelled build stays cancelled');
});

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('a missing registry, docker CLI or Docker daemon fails the build with a message naming it', async (t) => {
  const noRegistry = `127.0.0.1:${await closedPort()}`;
  const cases: Array<{ what: string; args?: string[]; env?: NodeJS.ProcessEnv; message: RegExp }> = [
    { what: 'registry', args: ['--registry', noRegistry], message: new RegExp(`the OCI registry at ${noRegistry} is not reachable from the hub \\(ECONNREFUSED\\).*docker-registry`) },
    { what: 'docker CLI', env: { PATH: '/nonexistent' }, message: /the docker CLI is not installed on the hub/ },
    { what: 'daemon', env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' }, message: /the Docker daemon is not reachable from the hub/ },
  ];
  for (const c of cases) {
    const b = await startBuildHub(t, { args: c.args ?? [], env: c.env ?? {} });
    await registerFixtureModel(b, t);
    await fixtureManifest(t, b, 'm', 'python', 'linear');
    const r = await b.cli('image', 'build', 'm', '--json');
    t.is(r.code, 1, `${c.what}: ${r.stderr}`);
    const image = JSON.parse(r.stdout) as Image;
    t.like(image, { status: 'failed', error: { code: 'HUB_E_BUILD_FAILED' } }, c.what);
    t.regex(image.error?.message ?? '', c.message, c.what);
  }
});
