/**
 * The builder's pieces against the real thing: a manifest for the ONNX iris example becomes a build
 * context, docker buildx builds it for linux/amd64 and linux/arm64 and pushes one index to the rig's
 * registry, and each platform's image (arm64 under QEMU) serves the sample through /score.
 */
import { randomBytes } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { Memory } from 'lowdb';
import { request } from 'undici';
import { writeBuildContext } from '../../hub/builds/build-context.js';
import { buildxBuild, type BuildxResult } from '../../hub/builds/buildx.js';
import { ManifestRegistry } from '../../hub/registry/manifest-registry.js';
import { ModelRegistry } from '../../hub/registry/model-registry.js';
import { BlobStore } from '../../hub/store/blob-store.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { ModelVersion } from '../../shared/api/models.js';
import { packDirectory } from '../../shared/archive/index.js';
import { systemClock } from '../../shared/clock.js';
import { tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deleteFromRegistry, rig, runtimeBaseImage } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/iris-onnx/', import.meta.url));
const actor = { keyId: 'test', keyName: 'test' };

/** Runs a platform's image with host networking on a free loopback port; returns its URL. */
async function runImage(t: ExecutionContext, ref: string, platform: string): Promise<string> {
  const started = await exec('docker', ['run', '-d', '--rm', '--pull', 'always', '--network', 'host', '--platform', platform, '-e', 'PORT=0', ref]);
  t.is(started.code, 0, started.stderr);
  const id = started.stdout.trim();
  t.teardown(() => exec('docker', ['rm', '-f', id]).then(() => undefined));
  const port = await waitFor(`${platform} container to listen`, async () => {
    const logs = await exec('docker', ['logs', id]);
    return /"msg":"listening".*"port":(\d+)/.exec(logs.stdout + logs.stderr)?.[1];
  }, 120_000);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${platform} /health`, async () => {
    const res = await request(`${url}/health`);
    const body = (await res.body.json()) as { status: string; error?: string };
    if (body.status === 'failed') throw new Error(body.error);
    return res.statusCode === 200;
  }, 120_000);
  return url;
}

/** A registry and blob store of its own (in memory and a temp directory), as the hub wires them. */
async function registries(t: ExecutionContext) {
  const work = await tempDir(t, 'edgeml-build-');
  const blobs = await BlobStore.open(join(work, 'blobs'));
  const store = await LowdbHubStore.open(new Memory<HubData>(), 'memory');
  const models = new ModelRegistry({ models: store.models, blobs, clock: systemClock, limits: { maxUploadBytes: 1 << 30, maxArchiveFiles: 1000 } });
  const manifests = new ManifestRegistry({ manifests: store.manifests, models: store.models, blobs, clock: systemClock });
  return { work, blobs, models, manifests };
}

const PLATFORMS = ['linux/amd64', 'linux/arm64'];

/**
 * What the hub's builder will do for one manifest: write its context into a fresh directory and
 * build it for both platforms under a throwaway tag (removed from the registry afterwards).
 */
async function buildManifest(
  t: ExecutionContext,
  inputs: { work: string; blobs: BlobStore; manifest: ManifestVersion; models: ModelVersion[]; repo: string; tag: string; log: string[] },
): Promise<BuildxResult & { ref: string }> {
  const { registry } = rig();
  const baseImage = runtimeBaseImage(inputs.manifest.runtime);
  const log = (line: string) => inputs.log.push(line);
  const context = join(inputs.work, `context-${inputs.tag}`);
  await writeBuildContext(context, { manifest: inputs.manifest, models: inputs.models, platforms: PLATFORMS, baseImage, blobs: inputs.blobs, log });
  t.teardown(() => deleteFromRegistry(registry, inputs.repo, inputs.tag));
  const built = await buildxBuild({ contextDir: context, platforms: PLATFORMS, tags: [`${registry}/${inputs.repo}:${inputs.tag}`], baseImage, onLog: log });
  t.deepEqual(Object.keys(built.platforms).sort(), PLATFORMS, inputs.log.slice(-20).join('\n'));
  return { ...built, ref: `${registry}/${inputs.repo}@${built.digest}` };
}

test('the ONNX example builds for amd64 and arm64, and both images score the sample', async (t) => {
  const { registry } = rig();
  const { work, blobs, models, manifests } = await registries(t);

  const model = await models.register({ name: 'iris', kind: 'directory', meta: { framework: 'onnx' }, source: packDirectory(join(EXAMPLE, 'model')), actor });
  const text = (file: string) => readFile(join(EXAMPLE, file), 'utf8');
  const manifestBody = {
    models: ['iris:1'],
    runtime: 'node' as const,
    score: { filename: 'score.js', content: await text('score.js') },
    schema: JSON.parse(await text('schema.json')) as unknown,
    deps: { filename: 'package.json', content: await text('package.json') },
  };
  const manifest = await manifests.create('iris-onnx', manifestBody, actor);

  const log: string[] = [];
  const repo = 'edgeml-test/iris-onnx';
  const tag = `t${randomBytes(4).toString('hex')}`;
  let started = Date.now();
  const built = await buildManifest(t, { work, blobs, manifest, models: [model], repo, tag, log });
  t.log(`first build: ${Date.now() - started} ms`);
  t.regex(built.digest, /^sha256:[0-9a-f]{64}$/);
  const { ref } = built;
  const inspect = await exec('docker', ['buildx', 'imagetools', 'inspect', '--format', '{{json .Image}}', ref]);
  t.is(inspect.code, 0, inspect.stderr);
  t.regex(inspect.stdout, new RegExp(`"io.edgeml.manifest.digest":\\s*"${manifest.digest}"`), 'the image names its manifest');

  const sample = JSON.parse(await text('schema.json')) as { sample: unknown };
  for (const platform of PLATFORMS) {
    const url = await runImage(t, ref, platform);
    const res = await request(`${url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(sample.sample) });
    const body = (await res.body.json()) as { predictions: Array<{ label: string }> };
    t.is(res.statusCode, 200, `${platform}: ${JSON.stringify(body)}`);
    t.is(body.predictions[0]?.label, 'setosa', platform);
    const swagger = (await (await request(`${url}/swagger.json`)).body.json()) as object;
    t.regex(JSON.stringify(swagger), /"maxItems":64/, `${platform}: /swagger.json carries the input schema`);
  }

  // A new model version (the same files plus a model card) rebuilds only the model layer.
  const modelDir = join(work, 'model-v2');
  await cp(join(EXAMPLE, 'model'), modelDir, { recursive: true });
  await writeFile(join(modelDir, 'CARD.md'), 'iris, retrained\n');
  const model2 = await models.register({ name: 'iris', kind: 'directory', meta: { framework: 'onnx' }, source: packDirectory(modelDir), actor });
  const manifest2 = await manifests.create('iris-onnx', { ...manifestBody, models: [`iris:${model2.version}`] }, actor);
  started = Date.now();
  const rebuilt = await buildManifest(t, { work, blobs, manifest: manifest2, models: [model2], repo, tag: `${tag}-2`, log });
  t.log(`rebuild after a new model version: ${Date.now() - started} ms`);
  for (const platform of PLATFORMS) {
    const before = await layers(registry, repo, built.platforms[platform]!);
    const after = await layers(registry, repo, rebuilt.platforms[platform]!);
    t.is(after.length, before.length);
    t.deepEqual(after.slice(0, -1), before.slice(0, -1), `${platform}: every layer below the models is reused`);
    t.not(after.at(-1), before.at(-1), `${platform}: the model layer is new`);
  }
});

async function layers(registry: string, repo: string, digest: string): Promise<string[]> {
  const res = await request(`http://${registry}/v2/${repo}/manifests/${digest}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  const body = (await res.body.json()) as { layers: Array<{ digest: string }> };
  return body.layers.map((l) => l.digest);
}

test('a python manifest (numpy model) builds for amd64 and arm64 and scores on both', async (t) => {
  const { work, blobs, models, manifests } = await registries(t);
  const fixtures = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
  const model = await models.register({ name: 'iris-linear', kind: 'directory', meta: {}, source: packDirectory(join(fixtures, 'models', 'iris-linear')), actor });
  const schema = JSON.parse(await readFile(join(fixtures, 'schema.json'), 'utf8')) as { sample: unknown };
  const manifest = await manifests.create(
    'iris-python',
    { models: ['iris-linear:1'], runtime: 'python', score: { filename: 'score.py', content: await readFile(join(fixtures, 'python', 'linear', 'score.py'), 'utf8') }, schema },
    actor,
  );
  const built = await buildManifest(t, { work, blobs, manifest, models: [model], repo: 'edgeml-test/iris-python', tag: `t${randomBytes(4).toString('hex')}`, log: [] });
  for (const platform of PLATFORMS) {
    const url = await runImage(t, built.ref, platform);
    const res = await request(`${url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(schema.sample) });
    const body = (await res.body.json()) as { class?: string };
    t.is(res.statusCode, 200, `${platform}: ${JSON.stringify(body)}`);
    t.is(body.class, 'setosa', platform);
  }
});
