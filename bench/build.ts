/**
 * Benchmark 6, build: the first multi-arch build of the example (examples/iris-onnx, registered and
 * described as scripts/quickstart.sh does), then a rebuild after a new model version; the duration
 * of each and the bytes pushed, counted at a loopback proxy in front of the rig's registry
 * (bench/lib/registry-meter.ts).
 *
 * Peer, in the same run: a plain `docker buildx build --platform … --push` of a hand-written
 * Dockerfile that copies the model before the runtime and the dependencies (what a first draft
 * looks like), on a build context with the very same files (written by the hub's own context
 * writer, dependencies installed per platform with the same npm command), so the layer order is the
 * only difference. Both build on a base image made unique to the run (the rig's node base plus one
 * small layer), so neither finds earlier runs' layers in the build cache: a first build is cold.
 *
 * Quick mode builds linux/amd64 only; full mode linux/amd64 and linux/arm64 (the hub smoke-tests
 * arm64 under QEMU). Everything goes under a repository prefix unique to the run, deleted from the
 * registry and the local image store afterwards.
 *
 *   npm run build && npx tsx bench/build.ts [--quick]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';
import { writeBuildContext } from '../hub/builds/build-context.js';
import { BlobStore } from '../hub/store/blob-store.js';
import type { Image, ImageList } from '../shared/api/images.js';
import type { ManifestVersion } from '../shared/api/manifests.js';
import type { ModelVersion } from '../shared/api/models.js';
import { EDGEML_BIN } from '../test/helpers/edgeml-process.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../agent/runtime/image-size.js';
import { rig } from '../test/helpers/rig.js';
import { seconds } from './lib/fleet.js';
import { call, startHub, type Hub } from './lib/hub.js';
import { countsBetween, startRegistryMeter, type RegistryCounts, type RegistryMeter } from './lib/registry-meter.js';
import { runStandalone, type Row, type Scenario, type ScenarioContext } from './lib/scenario.js';

const EXAMPLE = fileURLToPath(new URL('../examples/iris-onnx/', import.meta.url));
const BASE_VERSIONS = fileURLToPath(new URL('../images/base/versions.env', import.meta.url));
const MANIFEST = 'iris-scorer';
const POLL_MS = 200;
const run$ = promisify(execFile);

/** `cmd args`, failing with its output; bounded by `timeoutMs`. */
async function sh(cmd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    const { stdout } = await run$(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed: ${e.message.split('\n')[0]}\n${(e.stderr ?? '').split('\n').slice(-15).join('\n')}`);
  }
}

/** The rig's node base image tag (images/base/versions.env). */
async function nodeBaseTag(): Promise<string> {
  const m = /^NODE_VERSION=(\S+)$/m.exec(await readFile(BASE_VERSIONS, 'utf8'));
  if (!m) throw new Error(`no NODE_VERSION in ${BASE_VERSIONS}`);
  return m[1]!;
}

/**
 * The rig's node base with one small layer naming the run, pushed through the meter: every later
 * layer's cache key descends from it, so both builds of the run start from a cold cache.
 */
async function uniqueBase(meter: RegistryMeter, prefix: string, platforms: string[], work: string, runId: string): Promise<string> {
  const dir = join(work, 'base');
  await mkdir(dir, { recursive: true });
  const from = `${meter.host}/edgeml/runtime-node-base:${await nodeBaseTag()}`;
  await writeFile(join(dir, 'run-id'), `${runId}\n`);
  await writeFile(join(dir, 'Dockerfile'), `FROM ${from}\nCOPY run-id /etc/edgeml-bench-run-id\n`);
  const ref = `${meter.host}/${prefix}/base:${runId}`;
  await sh('docker', ['buildx', 'build', '--platform', platforms.join(','), '--network', 'host', '--provenance=false', '--push', '--tag', ref, dir], 120_000);
  return ref;
}

/** A model that is no longer the committed one: the ONNX bias nudged by 0.1 %, `modelVersion` 2 (a retrained model, same shape). */
async function retrainedModel(into: string): Promise<void> {
  type Tensor = { name?: string | null; rawData?: Uint8Array | null };
  type Model = { modelVersion?: number | Long | null; graph?: { initializer?: Tensor[] | null } | null };
  type Long = { toNumber(): number };
  const { onnx } = createRequire(import.meta.url)('onnx-proto') as {
    onnx: { ModelProto: { decode(b: Uint8Array): Model; encode(m: Model): { finish(): Uint8Array } } };
  };
  await cp(join(EXAMPLE, 'model'), into, { recursive: true });
  const model = onnx.ModelProto.decode(await readFile(join(into, 'iris.onnx')));
  const bias = model.graph?.initializer?.find((t) => t.name === 'bias');
  if (!bias?.rawData) throw new Error('examples/iris-onnx/model/iris.onnx has no raw bias initializer');
  const raw = Uint8Array.from(bias.rawData);
  const view = new DataView(raw.buffer);
  for (let i = 0; i + 4 <= raw.length; i += 4) view.setFloat32(i, view.getFloat32(i, true) * 1.001, true);
  bias.rawData = raw;
  model.modelVersion = 2;
  await writeFile(join(into, 'iris.onnx'), onnx.ModelProto.encode(model).finish());
}

interface Timed {
  /** Until the image was pushed (edgeml: the build's status left `building`). */
  buildPushMs: number;
  /** Of which writing the build context (npm install per platform included). */
  contextMs: number;
  /** edgeml only: the smoke tests after the push (each platform runs the image and scores the sample). */
  smokeMs: number | null;
  /** edgeml only: when each phase of the hub's builder was first seen, from the request. */
  phasesMs?: Record<string, number>;
  pushed: RegistryCounts;
}

function edgemlCli(hub: Hub, args: string[]): Promise<string> {
  return sh(process.execPath, [EDGEML_BIN, ...args, '--json'], 120_000, { EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey });
}

/** A build through the hub's REST API, timed by polling its status and progress. */
async function edgemlBuild(hub: Hub, meter: RegistryMeter, platforms: string[], timeoutMs: number): Promise<Timed & { image: Image }> {
  const before = meter.counts();
  const t0 = Date.now();
  let image = await call<Image>(hub, 'POST', '/api/v1/images', { manifest: MANIFEST, platforms });
  // When each of the builder's phases was first seen (polled, so within POLL_MS).
  const seen: Partial<Record<'check' | 'context' | 'buildx' | 'smoke', number>> = {};
  const phaseOf = (current: string) => (current.startsWith('checking') ? 'check' : current.startsWith('writing') ? 'context' : current.startsWith('testing') ? 'smoke' : current === 'queued' ? null : 'buildx');
  let pushed: number | null = null;
  let counts: RegistryCounts | null = null;
  while (!['succeeded', 'failed', 'cancelled'].includes(image.status)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`image ${image.id} not built after ${seconds(timeoutMs)} (status ${image.status})`);
    await new Promise((r) => setTimeout(r, POLL_MS));
    image = await call<Image>(hub, 'GET', `/api/v1/images/${image.id}`);
    const phase = image.progress ? phaseOf(image.progress.current) : null;
    if (phase) seen[phase] ??= Date.now() - t0;
    if (pushed === null && image.status !== 'building' && image.status !== 'queued') {
      pushed = Date.now();
      counts = countsBetween(before, meter.counts());
    }
  }
  const done = Date.now();
  if (image.status !== 'succeeded') {
    const log = await fetch(`${hub.url}/api/v1/images/${image.id}/log`, { headers: { authorization: `Bearer ${hub.adminKey}` } }).then((r) => r.text());
    throw new Error(`image ${image.id} ${image.status}: ${image.error?.message ?? ''}\n${log.split('\n').slice(-20).join('\n')}`);
  }
  return {
    image,
    buildPushMs: (pushed ?? done) - t0,
    contextMs: (seen.buildx ?? (pushed ?? done) - t0) - (seen.context ?? 0),
    phasesMs: seen,
    smokeMs: done - (pushed ?? done),
    pushed: counts ?? countsBetween(before, meter.counts()),
  };
}

/**
 * What a user writes first: the model at the top (it is what the image is about), then the server,
 * the dependencies and the script. Same files, same paths, same command as edgeml's image.
 */
const NAIVE_DOCKERFILE = `ARG BASE_IMAGE
FROM \${BASE_IMAGE}
ARG TARGETARCH
ENV EDGEML_APP_DIR="/opt/edgeml/app" EDGEML_MODEL_DIR="/opt/edgeml/models" HOST="127.0.0.1" NODE_ENV="production" PORT="8080"
COPY models/ /opt/edgeml/models/
COPY runtime/ /opt/edgeml/runtime/
COPY deps/\${TARGETARCH}/ /opt/edgeml/app/
COPY app/ /opt/edgeml/app/
CMD ["node", "/opt/edgeml/runtime/server.mjs"]
USER 65534:65534
`;

/** The peer: the same context, the naive Dockerfile, `docker buildx build --push`. */
async function peerBuild(
  o: { hub: Hub; data: string; meter: RegistryMeter; work: string; platforms: string[]; baseImage: string; repo: string },
  manifestVersion: number,
  timeoutMs: number,
): Promise<Timed> {
  const manifest = await call<ManifestVersion>(o.hub, 'GET', `/api/v1/manifests/${MANIFEST}/versions/${manifestVersion}`);
  const models = await Promise.all(manifest.models.map((m) => call<ModelVersion>(o.hub, 'GET', `/api/v1/models/${m.name}/versions/${m.version}`)));
  const blobs = await BlobStore.open(join(o.data, 'blobs'));
  const dir = join(o.work, `peer-${manifestVersion}`);
  const before = o.meter.counts();
  const t0 = Date.now();
  const log: string[] = [];
  await writeBuildContext(dir, { manifest, models, platforms: o.platforms, baseImage: o.baseImage, blobs, log: (l) => log.push(l) });
  await writeFile(join(dir, 'Dockerfile'), NAIVE_DOCKERFILE);
  const contextMs = Date.now() - t0;
  await sh(
    'docker',
    ['buildx', 'build', '--platform', o.platforms.join(','), '--network', 'host', '--provenance=false', '--build-arg', `BASE_IMAGE=${o.baseImage}`, '--push', '--tag', `${o.repo}:v${manifestVersion}`, dir],
    timeoutMs,
  );
  const buildPushMs = Date.now() - t0;
  await rm(dir, { recursive: true, force: true });
  return { buildPushMs, contextMs, smokeMs: null, pushed: countsBetween(before, o.meter.counts()) };
}

/**
 * Deletes a tag's manifest (and so the tag) from the registry. Unlike test/helpers/rig.ts
 * `deleteFromRegistry`, it asks for single-platform manifests too: a quick build pushes no index.
 */
async function deleteTag(registry: string, repo: string, tag: string): Promise<void> {
  const head = await request(`http://${registry}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: [...INDEX_TYPES, ...MANIFEST_TYPES].join(', ') } });
  await head.body.dump();
  const digest = head.headers['docker-content-digest'];
  if (head.statusCode !== 200 || typeof digest !== 'string') return;
  const del = await request(`http://${registry}/v2/${repo}/manifests/${digest}`, { method: 'DELETE' });
  await del.body.dump();
}

/** The registry tags, and local images under the meter's host (the hub's pulls and buildx's results). */
async function cleanUp(registry: string, meterHost: string, prefix: string, tags: Array<{ repo: string; tag: string }>): Promise<void> {
  for (const { repo, tag } of tags) await deleteTag(registry, repo, tag).catch(() => undefined);
  // Under the run's prefix by id (the smoke tests' pulls by digest have no tag; every such image holds
  // the run's unique base layer, so no one else's shares its id); anything else under the meter's
  // host (the rig's base, if buildx kept it under that name) by name only, which removes the tag alone.
  const listed = await sh('docker', ['image', 'ls', '--no-trunc', '--format', '{{.ID}} {{.Repository}} {{.Tag}}'], 30_000).catch(() => '');
  const mine = new Set<string>();
  for (const line of listed.split('\n')) {
    const [id, repository, tag] = line.split(' ');
    if (!id || !repository?.startsWith(`${meterHost}/`)) continue;
    if (repository.startsWith(`${meterHost}/${prefix}/`)) mine.add(id);
    else if (tag && tag !== '<none>') mine.add(`${repository}:${tag}`);
  }
  if (mine.size) await sh('docker', ['image', 'rm', '--force', ...mine], 60_000).catch(() => undefined);
}

const mb = (bytes: number) => Math.round(bytes / 1e4) / 100;

function rows(first: { edgeml: Timed; peer: Timed }, rebuild: { edgeml: Timed; peer: Timed }, platforms: string[]): Row[] {
  const p = platforms.map((x) => x.replace('linux/', '')).join('+');
  const s = (ms: number) => Math.round(ms / 100) / 10;
  const pushedNote = (t: Timed) => `${t.pushed.blobsUploaded} blobs uploaded, ${t.pushed.blobsMounted} mounted`;
  const out: Row[] = [];
  for (const [what, r] of [['first build', first], ['rebuild after a new model version', rebuild]] as const) {
    out.push(
      {
        metric: `${what}, ${p}: build + push`,
        unit: 's',
        edgeml: s(r.edgeml.buildPushMs),
        peer: s(r.peer.buildPushMs),
        better: 'lower',
        note: `context with npm install: ${seconds(r.edgeml.contextMs)} vs ${seconds(r.peer.contextMs)}`,
      },
      {
        metric: `${what}, ${p}: bytes pushed`,
        unit: 'MB',
        edgeml: mb(r.edgeml.pushed.blobUploadBytes + r.edgeml.pushed.manifestBytes),
        peer: mb(r.peer.pushed.blobUploadBytes + r.peer.pushed.manifestBytes),
        better: 'lower',
        note: `edgeml ${pushedNote(r.edgeml)}; peer ${pushedNote(r.peer)}`,
      },
    );
  }
  out.push({
    metric: `smoke tests after each build, ${p} (edgeml only)`,
    unit: 's',
    edgeml: s((first.edgeml.smokeMs ?? 0) + (rebuild.edgeml.smokeMs ?? 0)),
    peer: null,
    better: 'lower',
    note: `first ${seconds(first.edgeml.smokeMs ?? 0)}, rebuild ${seconds(rebuild.edgeml.smokeMs ?? 0)}; the peer pushes untested images`,
  });
  return out;
}

async function run(ctx: ScenarioContext) {
  const platforms = ctx.quick ? ['linux/amd64'] : ['linux/amd64', 'linux/arm64'];
  const buildTimeoutMs = ctx.quick ? 120_000 : 360_000;
  const { registry } = rig();
  const runId = randomBytes(4).toString('hex');
  const prefix = `edgeml-bench-${runId}`;
  const meter = await startRegistryMeter(registry);
  const work = await mkdtemp(join(tmpdir(), 'edgeml-bench-build-'));
  const data = join(work, 'hub');
  const tags: Array<{ repo: string; tag: string }> = [];
  let hub: Hub | null = null;
  try {
    ctx.log(`a base image unique to run ${runId} for ${platforms.join(', ')}`);
    const baseImage = await uniqueBase(meter, prefix, platforms, work, runId);
    tags.push({ repo: `${prefix}/base`, tag: runId });
    hub = await startHub({ data, args: ['--registry', meter.host, '--base-image-node', baseImage], env: { EDGEML_HUB_IMAGE_PREFIX: `${prefix}/edgeml` } });
    const h = hub;
    await edgemlCli(h, ['model', 'register', 'iris', join(EXAMPLE, 'model'), '--framework', 'onnx', '--tag', 'example=iris']);
    const manifestArgs = ['--runtime', 'node', '--score', join(EXAMPLE, 'score.js'), '--schema', join(EXAMPLE, 'schema.json'), '--deps', join(EXAMPLE, 'package.json')];
    await edgemlCli(h, ['manifest', 'create', MANIFEST, '--model', 'iris:1', ...manifestArgs]);

    const peerOpts = { hub: h, data, meter, work, platforms, baseImage, repo: `${meter.host}/${prefix}/peer/${MANIFEST}` };
    ctx.log('edgeml: first build');
    const e1 = await edgemlBuild(h, meter, platforms, buildTimeoutMs);
    tags.push(...e1.image.tags.map((tag) => ({ repo: `${prefix}/edgeml/${MANIFEST}`, tag })));
    ctx.log(`edgeml: first build pushed in ${seconds(e1.buildPushMs)} (${mb(e1.pushed.blobUploadBytes)} MB; phases first seen at ${JSON.stringify(e1.phasesMs)} ms); peer: first build`);
    const p1 = await peerBuild(peerOpts, 1, buildTimeoutMs);
    tags.push({ repo: `${prefix}/peer/${MANIFEST}`, tag: 'v1' });
    ctx.log(`peer: first build pushed in ${seconds(p1.buildPushMs)} (${mb(p1.pushed.blobUploadBytes)} MB)`);

    const v2 = join(work, 'model-v2');
    await retrainedModel(v2);
    await edgemlCli(h, ['model', 'register', 'iris', v2, '--framework', 'onnx', '--tag', 'example=iris']);
    await edgemlCli(h, ['manifest', 'create', MANIFEST, '--model', 'iris:2', ...manifestArgs]);
    ctx.log('edgeml: rebuild with iris:2');
    const e2 = await edgemlBuild(h, meter, platforms, buildTimeoutMs);
    tags.push(...e2.image.tags.map((tag) => ({ repo: `${prefix}/edgeml/${MANIFEST}`, tag })));
    ctx.log(`edgeml: rebuild pushed in ${seconds(e2.buildPushMs)} (${mb(e2.pushed.blobUploadBytes)} MB; phases first seen at ${JSON.stringify(e2.phasesMs)} ms); peer: rebuild`);
    const p2 = await peerBuild(peerOpts, 2, buildTimeoutMs);
    tags.push({ repo: `${prefix}/peer/${MANIFEST}`, tag: 'v2' });
    ctx.log(`peer: rebuild pushed in ${seconds(p2.buildPushMs)} (${mb(p2.pushed.blobUploadBytes)} MB)`);

    const strip = ({ image: _image, ...t }: Timed & { image: Image }) => t;
    return {
      rows: rows({ edgeml: e1, peer: p1 }, { edgeml: e2, peer: p2 }, platforms),
      details: { platforms, prefix, baseImage, sizes: { first: e1.image.sizes, rebuild: e2.image.sizes }, first: { edgeml: strip(e1), peer: p1 }, rebuild: { edgeml: strip(e2), peer: p2 } },
    };
  } finally {
    // The hub's own list catches tags pushed by a build that failed half-way.
    if (hub) {
      const list = await call<ImageList>(hub, 'GET', '/api/v1/images').catch(() => ({ images: [] as Image[] }));
      for (const image of list.images) for (const tag of image.tags) tags.push({ repo: `${prefix}/edgeml/${MANIFEST}`, tag });
      await hub.stop();
    }
    tags.push({ repo: `${prefix}/peer/${MANIFEST}`, tag: 'v1' }, { repo: `${prefix}/peer/${MANIFEST}`, tag: 'v2' });
    await cleanUp(registry, meter.host, prefix, tags);
    await meter.close();
    await rm(work, { recursive: true, force: true });
  }
}

export const scenario: Scenario = {
  name: 'build',
  title: 'Build: first multi-arch build of the example, then a rebuild after a new model version',
  peer: 'docker buildx --push, model-first Dockerfile',
  run,
};

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await runStandalone(scenario);
