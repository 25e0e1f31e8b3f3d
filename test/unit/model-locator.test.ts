/**
 * Which model versions run where (hub/fleet/model-locator.ts), from devices' reports and the hub's
 * builds: the serving revision's image, found in the report itself or in another device's, and the
 * build with its digest naming the models.
 */
import test from 'ava';
import { buildsByDigest, digestOf, locateModel, resolveServices, revisionImages, servingImage, type DeviceReport } from '../../hub/fleet/model-locator.js';
import type { ReportedService } from '../../shared/protocol.js';

const hex = (c: string) => `sha256:${c.repeat(64)}`;
const IRIS_1 = { name: 'iris', version: 1, digest: hex('1') };
const IRIS_2 = { name: 'iris', version: 2, digest: hex('2') };
const LABELS_1 = { name: 'labels', version: 1, digest: hex('3') };
/** Build 1 has iris:1; build 2 has iris:2 and labels:1; FOREIGN was built elsewhere. */
const IMAGE_1 = `127.0.0.1:5000/edgeml/iris-scorer@${hex('a')}`;
const IMAGE_2 = `127.0.0.1:5000/edgeml/iris-scorer@${hex('b')}`;
const FOREIGN = `registry.example/counter@${hex('f')}`;
const BUILDS = buildsByDigest([
  { id: 1, status: 'succeeded', digest: hex('a'), models: [IRIS_1] },
  { id: 2, status: 'succeeded', digest: hex('b'), models: [IRIS_2, LABELS_1] },
]);

function service(name: string, revision: number, image: string, phase: ReportedService['phase'], servingRevision: number | null): ReportedService {
  return { name, revision, image, phase, servingRevision, progress: null, error: null };
}
const running = (name: string, revision: number, image: string) => service(name, revision, image, 'running', revision);
const device = (id: string, services: ReportedService[], status: DeviceReport['status'] = 'online'): DeviceReport => ({ id, status, services });

test('digestOf takes the digest of a pinned reference and nothing else', (t) => {
  t.is(digestOf(IMAGE_1), hex('a'));
  t.is(digestOf(`localhost:5000/other-name@${hex('a')}`), hex('a'), 'the repository does not matter');
  t.is(digestOf('127.0.0.1:5000/edgeml/iris-scorer:v1'), null);
  t.is(digestOf('127.0.0.1:5000/edgeml/iris-scorer@sha256:abc'), null);
});

test('buildsByDigest keeps succeeded builds; of two with one digest, the newer', (t) => {
  const builds = buildsByDigest([
    { id: 1, status: 'succeeded', digest: hex('a'), models: [IRIS_1] },
    { id: 2, status: 'failed', digest: hex('b'), models: [IRIS_2] },
    { id: 3, status: 'building', digest: null, models: [IRIS_2] },
    { id: 4, status: 'succeeded', digest: hex('a'), models: [IRIS_1] },
  ]);
  t.deepEqual([...builds], [[hex('a'), { id: 4, models: [IRIS_1] }]]);
});

test('the serving image: its own when it serves the revision it reports, else the one another device reports for that revision', (t) => {
  const known = revisionImages([device('a', [running('iris', 1, IMAGE_1)]), device('b', [service('iris', 2, IMAGE_2, 'pulling', 1)])]);
  t.is(servingImage(running('iris', 2, IMAGE_2), known), IMAGE_2);
  t.is(servingImage(service('iris', 2, IMAGE_2, 'failed', 1), known), IMAGE_1, 'revision 1 is IMAGE_1 as device a reports it');
  t.is(servingImage(service('iris', 2, IMAGE_2, 'pulling', null), known), null, 'nothing serves');
  t.is(servingImage(service('other', 2, IMAGE_2, 'failed', 1), known), null, 'revisions count per service');
  t.is(servingImage(service('iris', 4, IMAGE_2, 'failed', 3), known), null, 'no device reports revision 3');
});

test('devices that disagree about a revision are not taken at their word', (t) => {
  const known = revisionImages([device('a', [running('iris', 1, IMAGE_1)]), device('b', [running('iris', 1, FOREIGN)]), device('c', [running('iris', 2, IMAGE_2)])]);
  t.is(known.get('iris@1'), null);
  t.is(known.get('iris@2'), IMAGE_2);
  t.is(servingImage(service('iris', 2, IMAGE_2, 'failed', 1), known), null);
});

test("the deployment's revision history settles what a revision runs, reported or not, disputed or not", (t) => {
  const history = [{ service: 'iris', revisions: [{ revision: 1, image: IMAGE_1 }, { revision: 3, image: IMAGE_2 }] }] as unknown as Parameters<typeof revisionImages>[1];
  const known = revisionImages([device('a', [running('iris', 1, IMAGE_1)]), device('b', [running('iris', 1, FOREIGN)])], history);
  t.is(known.get('iris@1'), IMAGE_1, 'the history wins over disagreeing reports');
  t.is(servingImage(service('iris', 4, IMAGE_2, 'failed', 3), known), IMAGE_2, 'revision 3, which no device reports');
});

test("a device's services: serving revision, image, build and models, or what the hub cannot tell", (t) => {
  const fleet = [
    device('a', [running('iris', 1, IMAGE_1)]),
    device('b', [service('iris', 2, IMAGE_2, 'pulling', 1), running('counter', 1, FOREIGN), service('late', 1, IMAGE_2, 'starting', null), service('old', 5, IMAGE_2, 'failed', 4)]),
  ];
  t.deepEqual(resolveServices(fleet[1]!, revisionImages(fleet), BUILDS), [
    { name: 'iris', revision: 2, phase: 'pulling', servingRevision: 1, image: IMAGE_1, digest: hex('a'), build: 1, models: [IRIS_1] },
    { name: 'counter', revision: 1, phase: 'running', servingRevision: 1, image: FOREIGN, digest: hex('f'), build: null, models: [] },
    { name: 'late', revision: 1, phase: 'starting', servingRevision: null, image: null, digest: null, build: null, models: [] },
    { name: 'old', revision: 5, phase: 'failed', servingRevision: 4, image: null, digest: null, build: null, models: null },
  ]);
});

/**
 * a and zz (offline) serve revision 2 (iris:2, labels:1); b is starting revision 2 and still serves
 * revision 1 (iris:1, as `old` reports it); c serves nothing yet; no device reports the revision 3
 * that d serves.
 */
const FLEET = [
  device('zz', [running('iris', 2, IMAGE_2)], 'offline'),
  device('b', [service('iris', 2, IMAGE_2, 'starting', 1)]),
  device('a', [running('iris', 2, IMAGE_2), running('counter', 1, FOREIGN)]),
  device('c', [service('iris', 2, IMAGE_2, 'pulling', null)]),
  device('d', [service('iris', 4, IMAGE_2, 'failed', 3)]),
  device('old', [running('iris', 1, IMAGE_1)]),
];
const on = (device: string, revision: number, servingRevision: number, phase: string, deviceStatus = 'online') => ({ device, deviceStatus, service: 'iris', revision, servingRevision, phase });
const placed = (where: ReturnType<typeof locateModel>) =>
  where.placements.map(({ device, deviceStatus, service, revision, servingRevision, phase, model }) => ({ device, deviceStatus, service, revision, servingRevision, phase, model: `${model.name}:${model.version}` }));

test('where a model runs, any version: by device, the serving revision and its build; an offline device as it last reported', (t) => {
  const where = locateModel(FLEET, BUILDS, { name: 'iris', version: null });
  t.deepEqual(placed(where), [
    { ...on('a', 2, 2, 'running'), model: 'iris:2' },
    { ...on('b', 2, 1, 'starting'), model: 'iris:1' },
    { ...on('old', 1, 1, 'running'), model: 'iris:1' },
    { ...on('zz', 2, 2, 'running', 'offline'), model: 'iris:2' },
  ]);
  t.like(where.placements[0], { image: IMAGE_2, digest: hex('b'), build: 2, model: IRIS_2 });
  t.like(where.placements[1], { image: IMAGE_1, digest: hex('a'), build: 1, model: IRIS_1 }, 'b is still served by revision 1');
  t.deepEqual(where.unresolved, [on('d', 4, 3, 'failed')], 'd may run iris: the hub cannot tell');
});

test('where one version runs; a model in an image with others; a model nobody runs', (t) => {
  t.deepEqual(placed(locateModel(FLEET, BUILDS, { name: 'iris', version: 1 })).map((p) => p.device), ['b', 'old']);
  t.deepEqual(placed(locateModel(FLEET, BUILDS, { name: 'labels', version: null })).map((p) => `${p.device} ${p.model}`), ['a labels:1', 'zz labels:1']);
  const nowhere = locateModel(FLEET, BUILDS, { name: 'iris', version: 7 });
  t.deepEqual(nowhere.placements, []);
  t.is(nowhere.unresolved.length, 1, 'what the hub cannot tell is said whatever was asked');
  t.deepEqual(locateModel([], BUILDS, { name: 'iris', version: null }), { placements: [], unresolved: [] });
});
