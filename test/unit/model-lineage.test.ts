/**
 * A model version's lineage (hub/registry/model-lineage.ts) assembled from in-memory repositories
 * and the real locator over fake device reports: the stored lineage, the manifests that pin the
 * version, the builds of those, and the placements `model where` gives.
 */
import test from 'ava';
import type { Image } from '../../shared/api/images.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { Lineage, ModelVersion } from '../../shared/api/models.js';
import type { ReportedService } from '../../shared/protocol.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { renderModelLineage } from '../../cli/commands/model-views.js';
import { ModelLocator, type DeviceReport } from '../../hub/fleet/model-locator.js';
import { ModelLineages, trainingOf } from '../../hub/registry/model-lineage.js';
import type { ImageRecord, VersionSelector } from '../../hub/store/store.js';

const hex = (c: string) => `sha256:${c.repeat(64)}`;
const AT = '2026-12-01T10:00:00.000Z';
const BY = { keyId: 'k', keyName: 'test' };
const PLAIN: Lineage = { runId: null, dataset: null, metrics: {} };

function modelVersion(name: string, version: number, lineage: Lineage, aliases: string[] = []): ModelVersion {
  return {
    name,
    version,
    kind: 'file',
    digest: hex(String(version)),
    size: 1,
    files: [{ path: 'model.onnx', size: 1, digest: hex(String(version)) }],
    framework: 'onnx',
    description: '',
    tags: { team: 'vision' },
    lineage,
    aliases,
    createdAt: AT,
    createdBy: BY,
  };
}

const RETRAINED: Lineage = {
  runId: 'iris-nightly/7',
  dataset: 'flowers:2',
  metrics: { accuracy: 0.95, 'current.accuracy': 0.9 },
  parent: { name: 'iris', version: 1 },
  datasets: [{ name: 'flowers', version: 2, digest: hex('d') }],
  labels: { since: null, until: AT, count: 120 },
  trainer: { name: 'sk', version: 1, image: `127.0.0.1:5000/edgeml/trainer-sk@${hex('t')}` },
  job: 'iris-nightly',
  run: 7,
};
const IRIS_1 = modelVersion('iris', 1, { ...PLAIN, runId: 'mlflow-42' });
const IRIS_2 = modelVersion('iris', 2, RETRAINED, ['production']);
const ref = (v: ModelVersion) => ({ name: v.name, version: v.version, digest: v.digest });

function manifest(name: string, version: number, models: ModelVersion[]): Pick<ManifestVersion, 'name' | 'version' | 'models'> {
  return { name, version, models: models.map(ref) };
}
const MANIFESTS = [
  manifest('scorer', 1, [IRIS_1]),
  manifest('scorer', 2, [IRIS_2]),
  manifest('bundle', 1, [IRIS_2, IRIS_1]),
  manifest('other', 1, [modelVersion('labels', 2, PLAIN)]),
];

function image(id: number, manifestName: string, version: number, status: Image['status'], models: ModelVersion[]): ImageRecord {
  const digest = status === 'succeeded' ? hex(String.fromCharCode(96 + id)) : null;
  return {
    id,
    status,
    manifest: { name: manifestName, version, digest: hex('m') },
    runtime: 'node',
    models: models.map(ref),
    repository: `127.0.0.1:5000/edgeml/${manifestName}`,
    tags: [`v${version}`],
    ref: digest && `127.0.0.1:5000/edgeml/${manifestName}@${digest}`,
    digest,
    platforms: { 'linux/amd64': digest, 'linux/arm64': digest },
    sizes: {},
    checks: {},
    baseImage: 'base',
    error: null,
    createdAt: AT,
    createdBy: BY,
    startedAt: AT,
    finishedAt: AT,
    durationMs: 1,
    attempts: 1,
  };
}
/** Oldest first, as the repository lists them. */
const IMAGES = [
  image(1, 'scorer', 1, 'succeeded', [IRIS_1]),
  image(2, 'scorer', 2, 'failed', [IRIS_2]),
  image(3, 'scorer', 2, 'succeeded', [IRIS_2]),
  image(4, 'bundle', 1, 'building', [IRIS_2, IRIS_1]),
  image(5, 'other', 1, 'succeeded', []),
];

function running(name: string, image: ImageRecord): ReportedService {
  return { name, revision: 1, image: image.ref!, phase: 'running', servingRevision: 1, progress: null, error: null };
}
const DEVICES: DeviceReport[] = [
  { id: 'lab-2', status: 'online', services: [running('iris', IMAGES[2]!)] },
  { id: 'lab-1', status: 'offline', services: [running('iris', IMAGES[2]!), running('old', IMAGES[0]!)] },
  // Revision 3 failed and revision 2 still serves: no device reports revision 2's image, so the hub cannot tell what it runs.
  { id: 'lab-3', status: 'online', services: [{ ...running('canary', IMAGES[2]!), revision: 3, phase: 'failed', servingRevision: 2 }] },
];

function resolve(name: string, selector: VersionSelector): Promise<ModelVersion> {
  const versions = [IRIS_1, IRIS_2].filter((v) => v.name === name);
  const found =
    'alias' in selector ? versions.find((v) => v.aliases.includes(selector.alias)) : 'latest' in selector ? versions.at(-1) : versions.find((v) => v.version === selector.version);
  return found ? Promise.resolve(found) : Promise.reject(new EdgemlError(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${name} not found`, { httpStatus: 404 }));
}

function setup() {
  const models = { resolve };
  const imageQueries: { manifest?: string | undefined; status?: string | undefined }[] = [];
  const images = {
    list: (filter: { manifest?: string | undefined; status?: string | undefined }) => {
      imageQueries.push(filter);
      return Promise.resolve(IMAGES.filter((i) => (!filter.manifest || i.manifest.name === filter.manifest) && (!filter.status || i.status === filter.status)));
    },
  };
  const locator = new ModelLocator({
    devices: { list: () => DEVICES, get: () => { throw new Error('not used'); } },
    images,
    models,
    deployments: { list: () => Promise.resolve([]) },
  });
  const lineages = new ModelLineages({ models, manifests: { list: () => Promise.resolve(MANIFESTS as ManifestVersion[]) }, images, locator });
  return { lineages, locator, imageQueries };
}

test('a retrained version: parent, datasets, training, the manifests that pin it, their builds, and where it runs', async (t) => {
  const { lineages, locator } = setup();
  const lineage = await lineages.of('iris', { alias: 'production' });
  t.deepEqual(lineage.model, { name: 'iris', version: 2, digest: hex('2'), aliases: ['production'], tags: { team: 'vision' }, createdAt: AT });
  t.deepEqual(lineage.parent, { name: 'iris', version: 1 });
  t.deepEqual(lineage.datasets, [{ name: 'flowers', version: 2, digest: hex('d') }]);
  t.deepEqual(lineage.training, {
    runId: 'iris-nightly/7',
    dataset: 'flowers:2',
    job: 'iris-nightly',
    run: 7,
    trainer: RETRAINED.trainer!,
    labels: RETRAINED.labels!,
    metrics: RETRAINED.metrics,
  });
  t.deepEqual(lineage.manifests, [{ name: 'bundle', version: 1 }, { name: 'scorer', version: 2 }], 'by name then version; scorer:1 pins iris:1 only');
  t.deepEqual(
    lineage.images.map((i) => [i.id, `${i.manifest.name}:${i.manifest.version}`, i.status, i.digest]),
    [
      [2, 'scorer:2', 'failed', null],
      [3, 'scorer:2', 'succeeded', hex('c')],
      [4, 'bundle:1', 'building', null],
    ],
    'every build of those manifests, oldest first, whatever its status',
  );
  t.deepEqual(lineage.images[1], { id: 3, manifest: { name: 'scorer', version: 2 }, status: 'succeeded', platforms: { 'linux/amd64': hex('c'), 'linux/arm64': hex('c') }, digest: hex('c') });
  const where = await locator.where('iris', 2);
  t.deepEqual(lineage.placements, where.placements, 'exactly what model where gives');
  t.deepEqual(lineage.unresolved, where.unresolved, 'and the services that may run it, as model where gives them');
  t.deepEqual(lineage.unresolved, [{ device: 'lab-3', deviceStatus: 'online', service: 'canary', revision: 3, phase: 'failed', servingRevision: 2 }]);
  t.deepEqual(
    lineage.placements.map((p) => [p.device, p.service, p.build]),
    [
      ['lab-1', 'iris', 3],
      ['lab-2', 'iris', 3],
    ],
  );
});

test('a version registered by hand: no parent, no datasets, training from its run id; an older build still serving it', async (t) => {
  const { lineages } = setup();
  const lineage = await lineages.of('iris', { version: 1 });
  t.is(lineage.parent, null);
  t.deepEqual(lineage.datasets, []);
  t.deepEqual(lineage.training, { runId: 'mlflow-42', dataset: null, job: null, run: null, trainer: null, labels: null, metrics: {} });
  t.deepEqual(lineage.manifests, [{ name: 'bundle', version: 1 }, { name: 'scorer', version: 1 }]);
  t.deepEqual(lineage.images.map((i) => i.id), [1, 4]);
  t.deepEqual(lineage.placements.map((p) => [p.device, p.service, p.model.version]), [['lab-1', 'old', 1]]);
  t.is((await lineages.of('iris', { latest: true })).model.version, 2);
});

test('builds are asked for by the names of the manifests that pin the version, and not at all when none does', async (t) => {
  const { lineages, imageQueries } = setup();
  await lineages.of('iris', { version: 2 });
  // The locator reads the succeeded builds for itself.
  t.deepEqual(imageQueries.filter((q) => q.status === undefined).map((q) => q.manifest).sort(), ['bundle', 'scorer']);

  const lone = modelVersion('lone', 1, PLAIN);
  const unpinned = new ModelLineages({
    models: { resolve: () => Promise.resolve(lone) },
    manifests: { list: () => Promise.resolve(MANIFESTS as ManifestVersion[]) },
    images: { list: () => Promise.reject(new Error('no manifest pins it: no builds to read')) },
    locator: { where: () => Promise.resolve({ placements: [], unresolved: [] }) },
  });
  t.like(await unpinned.of('lone', { version: 1 }), { manifests: [], images: [], placements: [], unresolved: [] });
});

test('the CLI shows the services that may run the version, and says no device runs it only when none may', async (t) => {
  const { lineages } = setup();
  const text = renderModelLineage(await lineages.of('iris', { version: 1 }));
  t.regex(text, /\n {6}device lab-1 \(offline\) {2}service old {2}serving revision 1 {2}running\n/);
  t.regex(text, /\nmay run it \(the hub cannot tell\): device lab-3 \(online\) {2}service canary {2}serving revision 2 {2}failed \(revision 3\)\n$/);

  const lone = renderModelLineage({ ...(await lineages.of('iris', { version: 1 })), placements: [], unresolved: [] });
  t.regex(lone, /\n\(no device runs iris:1\)\n$/);
  t.notRegex(lone, /may run it/);
});

test('training is null only when the stored lineage says nothing about it', (t) => {
  t.is(trainingOf(PLAIN), null);
  t.is(trainingOf({ ...PLAIN, parent: { name: 'iris', version: 1 } }), null, 'a parent alone is not training');
  t.deepEqual(trainingOf({ ...PLAIN, metrics: { accuracy: 0.9 } })?.metrics, { accuracy: 0.9 });
  t.is(trainingOf({ ...PLAIN, dataset: 's3://bucket/iris.csv' })?.dataset, 's3://bucket/iris.csv');
});

test('an unknown model, version or alias is the registry 404', async (t) => {
  const { lineages } = setup();
  for (const [name, selector] of [['nope', { latest: true }], ['iris', { version: 9 }], ['iris', { alias: 'staging' }]] as const) {
    const err = await t.throwsAsync(lineages.of(name, selector), { instanceOf: EdgemlError });
    t.is(err?.code, ErrorCodes.HUB_MODEL_NOT_FOUND);
  }
});
