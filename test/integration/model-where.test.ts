/**
 * `edgeml model where`, `edgeml model lineage` and the services of `edgeml device show` against a real hub, with devices
 * that are raw mqtt.js clients reporting what they serve, as an agent does.
 *
 * The images are hub builds without a build: building needs Docker, buildx and a registry, and what
 * is tested here starts after a build, from its record (digest and model versions). So the test
 * stops the hub, adds the records a succeeded build leaves to its store file, and starts it again;
 * `deploy --build` then takes them as it takes real ones.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import type { Deployment, DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import type { ModelLineage } from '../../shared/api/lineage.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { ModelVersion } from '../../shared/api/models.js';
import type { DeviceServices, ModelVersionRef, ModelWhere } from '../../shared/api/where.js';
import type { ReportedService, ReportedState } from '../../shared/protocol.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const IRIS_EXAMPLE = fileURLToPath(new URL('../../examples/iris-onnx/', import.meta.url));
const REPOSITORY = '127.0.0.1:5000/edgeml-test/iris-scorer';
const hex = (c: string) => `sha256:${c.repeat(64)}`;
const FOREIGN = `127.0.0.1:5000/edgeml-test/counter@${hex('f')}`;

/** What a succeeded build of `models` leaves in the store. */
function builtImage(id: number, digest: string, models: ModelVersionRef[]): Omit<Image, 'progress'> {
  const at = new Date().toISOString();
  return {
    id,
    status: 'succeeded',
    manifest: { name: 'iris-scorer', version: id, digest: hex(String(id)) },
    runtime: 'node',
    models,
    repository: REPOSITORY,
    tags: [`v${id}`],
    ref: `${REPOSITORY}@${digest}`,
    digest,
    platforms: { 'linux/amd64': digest },
    sizes: { 'linux/amd64': 1000 },
    checks: {},
    baseImage: 'test',
    error: null,
    createdAt: at,
    createdBy: { keyId: 'test', keyName: 'test' },
    startedAt: at,
    finishedAt: at,
    durationMs: 0,
    attempts: 1,
  };
}

/** Adds image records to a stopped hub's store file, whatever else its schema holds. */
async function addBuilds(data: string, images: Omit<Image, 'progress'>[]): Promise<void> {
  const file = join(data, 'hub.json');
  const store = JSON.parse(await readFile(file, 'utf8')) as { images: { nextId: number; records: unknown[] } };
  store.images.records.push(...images);
  store.images.nextId = Math.max(store.images.nextId, ...images.map((i) => i.id + 1));
  await writeFile(file, JSON.stringify(store));
}

/**
 * An enrolled device that reports its services; each report is waited for until the hub shows it.
 * It sends no status (its facts are not the point here), so the hub calls it never-connected.
 */
async function reportingDevice(t: ExecutionContext, hub: HubProcess, id: string) {
  const token = await enrollDevice(hub, id, { site: 'lab' });
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: token, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  return {
    client,
    async report(observedGeneration: number, ...services: ReportedService[]): Promise<void> {
      const state: ReportedState = { v: 1, observedGeneration, phase: services.every((s) => s.phase === 'running') ? 'converged' : 'reconciling', services };
      await client.publishAsync(`edgeml/v1/dev/${id}/reported`, JSON.stringify(state), { qos: 1 });
      await waitFor(`${id}'s report at the hub`, async () => {
        const { body } = await api<Device>(hub, 'GET', `/api/v1/devices/${id}`, { key: hub.adminKey });
        return isDeepStrictEqual(body.services, services);
      });
    },
  };
}

function service(name: string, revision: number, image: string, phase: ReportedService['phase'], servingRevision: number | null): ReportedService {
  return { name, revision, image, phase, servingRevision, progress: null, error: null };
}

const ref = (v: ModelVersion): ModelVersionRef => ({ name: v.name, version: v.version, digest: v.digest });

test('model where and device show follow what devices report serving, through the hub builds of their images', async (t) => {
  const data = await tempDir(t, 'edgeml-hub-');
  const first = await startHub(t, [], { data });
  const files = await tempDir(t);
  const register = async (name: string, content: string) => {
    const file = join(files, `${name}-${content}.onnx`);
    await writeFile(file, content);
    return ref(jsonOf<ModelVersion>(t, await cliFor(first)('model', 'register', name, file, '--json')));
  };
  const iris1 = await register('iris', 'one');
  const iris2 = await register('iris', 'two');
  await register('resnet', 'one');
  await first.kill('SIGTERM');
  await addBuilds(data, [builtImage(1, hex('a'), [iris1]), builtImage(2, hex('b'), [iris2])]);

  const hub = await startHub(t, [], { data });
  const cli = cliFor(hub);
  const where = async (...args: string[]) => jsonOf<ModelWhere>(t, await cli('model', 'where', ...args, '--json'));
  const lab1 = await reportingDevice(t, hub, 'lab-1');
  const lab2 = await reportingDevice(t, hub, 'lab-2');

  const deployed = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--build', '1', '--target', 'site=lab', '--json'));
  t.deepEqual(deployed.models, [iris1], 'the build record is taken as a real one');
  const image1 = deployed.image;
  jsonOf(t, await cli('deploy', 'counter', '--image', FOREIGN, '--target', 'site=lab', '--json'));
  await lab1.report(2, service('iris', 1, image1, 'running', 1), service('counter', 1, FOREIGN, 'running', 1));
  await lab2.report(2, service('iris', 1, image1, 'running', 1), service('counter', 1, FOREIGN, 'pulling', null));

  const placement = (device: string, revision: number, servingRevision: number, phase: string, image: string, build: number, model: ModelVersionRef) => ({
    device,
    deviceStatus: 'never-connected',
    service: 'iris',
    revision,
    phase,
    servingRevision,
    image,
    digest: image.slice(image.indexOf('@') + 1),
    build,
    model,
  });
  t.deepEqual(await where('iris'), {
    model: 'iris',
    version: null,
    placements: [placement('lab-1', 1, 1, 'running', image1, 1, iris1), placement('lab-2', 1, 1, 'running', image1, 1, iris1)],
    unresolved: [],
  });

  // lab-2 moves first: while it pulls revision 2, revision 1 still serves, and lab-1 says which image that is.
  const image2 = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--build', '2', '--json')).image;
  await lab2.report(3, service('iris', 2, image2, 'pulling', 1), service('counter', 1, FOREIGN, 'running', 1));
  t.deepEqual((await where('iris:1')).placements, [placement('lab-1', 1, 1, 'running', image1, 1, iris1), placement('lab-2', 2, 1, 'pulling', image1, 1, iris1)]);
  const none = await where('iris:2');
  t.deepEqual(none, { model: 'iris', version: 2, placements: [], unresolved: [] });
  t.is((await cli('model', 'where', 'iris:2')).stdout, '(no device runs iris:2)\n');

  // lab-1 is on revision 2; no device reports revision 1 any more: the deployment's history says what it runs.
  await lab1.report(3, service('iris', 2, image2, 'running', 2), service('counter', 1, FOREIGN, 'running', 1));
  const settled = await where('iris');
  t.deepEqual(settled.placements, [placement('lab-1', 2, 2, 'running', image2, 2, iris2), placement('lab-2', 2, 1, 'pulling', image1, 1, iris1)]);
  t.deepEqual(settled.unresolved, []);
  const settledText = await cli('model', 'where', 'iris');
  t.is(settledText.code, 0);
  t.regex(settledText.stdout, /^DEVICE +STATUS +SERVICE +REVISION +MODEL +IMAGE +PHASE\nlab-1 +never-connected +iris +2 +iris:2 +bbbbbbbbbbbb +running\nlab-2 +never-connected +iris +1 +iris:1 +aaaaaaaaaaaa +pulling \(revision 2\)\n$/);
  const shownSettled = await cli('device', 'show', 'lab-2');
  t.regex(shownSettled.stdout, /\nservices:\nSERVICE +SERVING +PHASE +IMAGE +MODELS\niris +1 +pulling \(revision 2\) +aaaaaaaaaaaa +iris:1\ncounter +1 +running +ffffffffffff +-\n$/);

  // lab-2 arrives, then goes offline: it is listed with what it last reported.
  await lab2.report(3, service('iris', 2, image2, 'running', 2), service('counter', 1, FOREIGN, 'running', 1));
  await lab2.client.publishAsync('edgeml/v1/dev/lab-2/status', JSON.stringify({ v: 1, state: 'offline', reason: 'shutdown' }), { qos: 1 });
  await waitFor('lab-2 offline', async () => (await api<Device>(hub, 'GET', '/api/v1/devices/lab-2', { key: hub.adminKey })).body.status === 'offline');
  t.deepEqual(await where('iris:2'), {
    model: 'iris',
    version: 2,
    placements: [placement('lab-1', 2, 2, 'running', image2, 2, iris2), { ...placement('lab-2', 2, 2, 'running', image2, 2, iris2), deviceStatus: 'offline' }],
    unresolved: [],
  });
  t.deepEqual((await where('iris:1')).placements, []);

  const shown = await cli('device', 'show', 'lab-1');
  t.is(shown.code, 0);
  t.regex(shown.stdout, /\ngeneration: +desired 3, observed 3 \(converged\)\n/);
  t.regex(shown.stdout, /\nservices:\nSERVICE +SERVING +PHASE +IMAGE +MODELS\niris +2 +running +bbbbbbbbbbbb +iris:2\ncounter +1 +running +ffffffffffff +-\n$/);
  const services = await api<DeviceServices>(hub, 'GET', '/api/v1/devices/lab-1/services', { key: hub.adminKey });
  t.deepEqual(services.body.services[0], { name: 'iris', revision: 2, phase: 'running', servingRevision: 2, image: image2, digest: hex('b'), build: 2, models: [iris2] });
  t.false('build' in jsonOf<Device>(t, await cli('device', 'show', 'lab-1', '--json')).services[0]!, '--json is still the device record');

  // A model no device runs; a model or version the registry does not have.
  const resnet = await cli('model', 'where', 'resnet');
  t.is(resnet.code, 0);
  t.is(resnet.stdout, '(no device runs resnet)\n');
  t.deepEqual(await where('resnet'), { model: 'resnet', version: null, placements: [], unresolved: [] });
  for (const [missing, message] of [['nope', 'model nope not found'], ['iris:9', 'model iris:9 not found']] as const) {
    const r = await cli('model', 'where', missing);
    t.is(r.code, 1);
    t.regex(r.stderr, new RegExp(`${message}.*\\[HUB_E_MODEL_NOT_FOUND\\]`));
  }
  t.is((await cli('model', 'where', 'iris@production')).code, 2, 'NAME or NAME:VERSION only');

  // Reading is enough, and the routes are in the OpenAPI document.
  const readKey = jsonOf<{ key: string }>(t, await cli('apikey', 'create', '--name', 'viewer', '--scope', 'read', '--json')).key;
  t.is((await cliFor(hub, readKey)('model', 'where', 'iris', '--json')).code, 0);
  const doc = await api<{ paths: Record<string, unknown> }>(hub, 'GET', '/openapi.json');
  t.truthy(doc.body.paths['/api/v1/models/{name}/where']);
  t.truthy(doc.body.paths['/api/v1/devices/{id}/services']);
});

test('model lineage: from the registered run and dataset through the manifests and their builds to the devices serving the version', async (t) => {
  const data = await tempDir(t, 'edgeml-hub-');
  const first = await startHub(t, [], { data });
  const setupCli = cliFor(first);
  const files = await tempDir(t);
  const register = async (content: string) => {
    const file = join(files, `iris-${content}.onnx`);
    await writeFile(file, content);
    return jsonOf<ModelVersion>(t, await setupCli('model', 'register', 'iris', file, '--run-id', 'mlflow-42', '--dataset', 's3://lab/iris.csv', '--metric', 'accuracy=0.93', '--tag', 'team=vision', '--json'));
  };
  const iris1 = await register('one');
  const iris2 = await register('two');
  jsonOf(t, await setupCli('model', 'alias', 'iris', 'production', '2', '--json'));
  const manifest = (model: string) =>
    setupCli('manifest', 'create', 'iris-scorer', '--model', model, '--runtime', 'node', '--score', join(IRIS_EXAMPLE, 'score.js'), '--schema', join(IRIS_EXAMPLE, 'schema.json'), '--json');
  t.is(jsonOf<ManifestVersion>(t, await manifest('iris:2')).version, 1);
  t.is(jsonOf<ManifestVersion>(t, await manifest('iris:1')).version, 2);
  await first.kill('SIGTERM');
  // Build 1 of iris-scorer:1 (iris:2), build 2 of iris-scorer:2 (iris:1), build 3 of iris-scorer:1 failed.
  const failed = { ...builtImage(3, hex('c'), [ref(iris2)]), manifest: { name: 'iris-scorer', version: 1, digest: hex('1') }, status: 'failed' as const, ref: null, digest: null, platforms: { 'linux/amd64': null } };
  await addBuilds(data, [builtImage(1, hex('a'), [ref(iris2)]), builtImage(2, hex('b'), [ref(iris1)]), failed]);

  const hub = await startHub(t, [], { data });
  const cli = cliFor(hub);
  const lab1 = await reportingDevice(t, hub, 'lab-1');
  const image = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--build', '1', '--target', 'site=lab', '--json')).image;
  await lab1.report(1, service('iris', 1, image, 'running', 1));

  const lineage = await api<ModelLineage>(hub, 'GET', '/api/v1/models/iris/versions/@production/lineage', { key: hub.adminKey });
  t.is(lineage.status, 200);
  t.deepEqual(lineage.body, {
    model: { name: 'iris', version: 2, digest: iris2.digest, aliases: ['production'], tags: { team: 'vision' }, createdAt: iris2.createdAt },
    parent: null,
    datasets: [],
    training: { runId: 'mlflow-42', dataset: 's3://lab/iris.csv', job: null, run: null, trainer: null, labels: null, metrics: { accuracy: 0.93 } },
    manifests: [{ name: 'iris-scorer', version: 1 }],
    images: [
      { id: 1, manifest: { name: 'iris-scorer', version: 1 }, status: 'succeeded', platforms: { 'linux/amd64': hex('a') }, digest: hex('a') },
      { id: 3, manifest: { name: 'iris-scorer', version: 1 }, status: 'failed', platforms: { 'linux/amd64': null }, digest: null },
    ],
    placements: jsonOf<ModelWhere>(t, await cli('model', 'where', 'iris:2', '--json')).placements,
    unresolved: [],
  });
  t.is(lineage.body.placements.length, 1, 'lab-1 serves iris:2 through build 1');
  t.deepEqual(jsonOf<ModelLineage>(t, await cli('model', 'lineage', 'iris:2', '--json')), lineage.body, 'the CLI asks the same route');
  const older = jsonOf<ModelLineage>(t, await cli('model', 'lineage', 'iris:1', '--json'));
  t.deepEqual([older.manifests, older.images.map((i) => i.id), older.placements], [[{ name: 'iris-scorer', version: 2 }], [2], []]);

  const text = await cli('model', 'lineage', 'iris@production');
  t.is(text.code, 0, text.stderr);
  t.regex(
    text.stdout,
    /^training +run mlflow-42 +dataset s3:\/\/lab\/iris\.csv +accuracy=0\.93\nmodel +iris:2 +[0-9a-f]{12} +aliases production +tags team=vision +created [^\n]+\n {2}manifest iris-scorer:1\n {4}image 1 +succeeded +aaaaaaaaaaaa +linux\/amd64\n {6}device lab-1 \(never-connected\) +service iris +serving revision 1 +running\n {4}image 3 +failed +linux\/amd64\n$/,
  );
  t.regex((await cli('model', 'lineage', 'iris:1')).stdout, /\n {2}manifest iris-scorer:2\n {4}image 2 +succeeded +bbbbbbbbbbbb +linux\/amd64\n\(no device runs iris:1\)\n$/);

  // A service no deployment knows, serving a revision no device reports: the hub cannot tell what it runs, so it may run either version.
  const lab2 = await reportingDevice(t, hub, 'lab-2');
  await lab2.report(1, service('legacy', 2, FOREIGN, 'failed', 1));
  const maybe = { device: 'lab-2', deviceStatus: 'never-connected', service: 'legacy', revision: 2, phase: 'failed', servingRevision: 1 };
  const withUnresolved = jsonOf<ModelLineage>(t, await cli('model', 'lineage', 'iris:1', '--json'));
  t.deepEqual([withUnresolved.placements, withUnresolved.unresolved], [[], [maybe]]);
  t.deepEqual(withUnresolved.unresolved, jsonOf<ModelWhere>(t, await cli('model', 'where', 'iris:1', '--json')).unresolved, 'as model where has them');
  t.regex(
    (await cli('model', 'lineage', 'iris:1')).stdout,
    /\n {4}image 2 +succeeded +bbbbbbbbbbbb +linux\/amd64\nmay run it \(the hub cannot tell\): device lab-2 \(never-connected\) +service legacy +serving revision 1 +failed \(revision 2\)\n$/,
  );

  // Unknown versions, aliases and models are the registry's 404; reading is enough.
  for (const missing of ['9', '@staging']) {
    const r = await api<{ error: { code: string } }>(hub, 'GET', `/api/v1/models/iris/versions/${missing}/lineage`, { key: hub.adminKey });
    t.is(r.status, 404);
    t.is(r.body.error.code, 'HUB_E_MODEL_NOT_FOUND');
  }
  const unknown = await cli('model', 'lineage', 'iris:9');
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /model iris:9 not found.*\[HUB_E_MODEL_NOT_FOUND\]/);
  t.is((await cli('model', 'lineage', 'nope')).code, 1);
  const readKey = jsonOf<{ key: string }>(t, await cli('apikey', 'create', '--name', 'viewer', '--scope', 'read', '--json')).key;
  t.is((await api(hub, 'GET', '/api/v1/models/iris/versions/latest/lineage', { key: readKey })).status, 200);
  const doc = await api<{ paths: Record<string, unknown> }>(hub, 'GET', '/openapi.json');
  t.truthy(doc.body.paths['/api/v1/models/{name}/versions/{ref}/lineage']);
});
