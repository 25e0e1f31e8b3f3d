/**
 * Replicas, changeable limits, new targets and delete, at a real hub over REST and the CLI. Devices
 * are raw mqtt.js clients that log in with their tokens, keep every desired state the broker
 * delivers and, where a rollout has to see them, publish their status and what they run, as an
 * agent does. (Agents acting on these states are tested with real Docker elsewhere.)
 */
import test, { type ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import type { Deployment, DeploymentCreated, DeploymentList } from '../../shared/api/deployments.js';
import type { Rollout, RolloutList } from '../../shared/api/rollouts.js';
import { decodeMessage, type DesiredState, type ReportedState } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { onlineStatus } from '../helpers/device-status.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api, enrollDevice, type ErrorAnswer } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const IMAGE_1 = `127.0.0.1:5000/edgeml-test/iris@sha256:${'1'.repeat(64)}`;
const IMAGE_2 = `127.0.0.1:5000/edgeml-test/iris@sha256:${'2'.repeat(64)}`;

/** A device over MQTT: every desired state it gets, and a way to say what it runs. */
async function playDevice(t: ExecutionContext, hub: HubProcess, id: string, labels: Record<string, string>) {
  const token = await enrollDevice(hub, id, labels);
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: token, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  const received: DesiredState[] = [];
  client.on('message', (_topic, payload) => {
    const decoded = decodeMessage('desired', payload);
    if (decoded.ok) received.push(decoded.value);
  });
  await client.subscribeAsync(deviceTopic(id, 'desired'), { qos: 1 });
  await client.publishAsync(deviceTopic(id, 'status'), JSON.stringify(onlineStatus(id)), { qos: 1, retain: true });
  const latest = () => received.at(-1);
  return {
    received,
    latest,
    generation: (n: number) => waitFor(`${id} to get generation ${n}`, () => received.find((d) => d.generation === n)),
    /** Waits for a desired state that `ok` accepts. */
    until: (what: string, ok: (d: DesiredState) => boolean) => waitFor(`${id}: ${what}`, () => received.find(ok)),
    /** Reports running exactly what its latest desired state asks for. */
    async converge(): Promise<void> {
      const d = latest()!;
      const report: ReportedState = {
        v: 1,
        observedGeneration: d.generation,
        phase: 'converged',
        services: d.services.map((s) => ({ name: s.name, revision: s.revision, image: s.image, phase: 'running', servingRevision: s.revision, progress: null, error: null })),
      };
      await client.publishAsync(deviceTopic(id, 'reported'), JSON.stringify(report), { qos: 1 });
    },
  };
}

const has = (d: DesiredState | undefined, service: string) => d?.services.some((s) => s.name === service) === true;

test('replicas at deploy: fixed or autoscaled, in the view and the desired state; one replica adds no scale key; bad combinations are 400 naming the field', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const device = await playDevice(t, hub, 'rep-1', { site: 'lab' });

  const one = await api<DeploymentCreated>(hub, 'POST', '/api/v1/deployments', { key: hub.adminKey, json: { service: 'one', image: IMAGE_1, target: { site: 'lab' } } });
  t.is(one.status, 201);
  t.deepEqual(one.body.scale, { minReplicas: 1, maxReplicas: 1, targetUtilization: 0.7, scaleUpWindow: '5s', scaleDownWindow: '60s' });
  const first = await device.generation(1);
  t.deepEqual(Object.keys(first.services[0]!), ['name', 'revision', 'image', 'limits', 'keyHash', 'models'], 'a 1..1 service is what older agents got');

  const fixed = jsonOf<DeploymentCreated>(t, await cli('deploy', 'two', '--image', IMAGE_2, '--target', 'site=lab', '--replicas', '2', '--max-queue', '3', '--json'));
  t.deepEqual(fixed.scale, { minReplicas: 2, maxReplicas: 2, targetUtilization: 0.7, scaleUpWindow: '5s', scaleDownWindow: '60s' });
  const second = await device.generation(2);
  t.deepEqual(second.services.find((s) => s.name === 'two')?.scale, { minReplicas: 2, maxReplicas: 2, targetUtilization: 0.7, scaleUpWindowMs: 5000, scaleDownWindowMs: 60_000 });
  t.like(second.services.find((s) => s.name === 'two')?.limits, { maxConcurrent: 1, maxQueue: 3 });
  t.false('scale' in second.services.find((s) => s.name === 'one')!);

  const auto = jsonOf<DeploymentCreated>(
    t,
    await cli('deploy', 'auto', '--image', IMAGE_1, '--target', 'site=lab', '--min-replicas', '1', '--max-replicas', '3', '--target-utilization', '0.5', '--scale-up-window', '10s', '--scale-down-window', '2m', '--json'),
  );
  t.deepEqual(auto.scale, { minReplicas: 1, maxReplicas: 3, targetUtilization: 0.5, scaleUpWindow: '10s', scaleDownWindow: '120s' });
  t.deepEqual((await device.generation(3)).services.find((s) => s.name === 'auto')?.scale, { minReplicas: 1, maxReplicas: 3, targetUtilization: 0.5, scaleUpWindowMs: 10_000, scaleDownWindowMs: 120_000 });
  const shown = await cli('service', 'show', 'auto');
  t.regex(shown.stdout, /replicas:\s+1–3 per device, autoscaled at 50% of maxConcurrent \(up after 10s, down after 120s\)/);
  t.regex(shown.stdout, /limits:\s+per replica: maxConcurrent 1, maxQueue 10/);

  // One replica at most: autoscaler settings do nothing, so the state is still what older agents got.
  const single = jsonOf<DeploymentCreated>(t, await cli('deploy', 'single', '--image', IMAGE_1, '--target', 'site=lab', '--min-replicas', '1', '--max-replicas', '1', '--target-utilization', '0.5', '--json'));
  t.like(single.scale, { minReplicas: 1, maxReplicas: 1, targetUtilization: 0.5 }, 'kept in the view');
  const fourth = await device.generation(4);
  t.deepEqual(Object.keys(fourth.services.find((s) => s.name === 'single')!), ['name', 'revision', 'image', 'limits', 'keyHash', 'models'], 'a 1..1 service with its own utilisation has no scale');
  jsonOf(t, await cli('service', 'update', 'single', '--max-replicas', '2', '--json'));
  t.deepEqual((await device.generation(5)).services.find((s) => s.name === 'single')?.scale, { minReplicas: 1, maxReplicas: 2, targetUtilization: 0.5, scaleUpWindowMs: 5000, scaleDownWindowMs: 60_000 });

  const refused = async (body: object, field: RegExp) => {
    const res = await api<ErrorAnswer>(hub, 'POST', '/api/v1/deployments', { key: hub.adminKey, json: { service: 'bad', image: IMAGE_1, target: { site: 'lab' }, ...body } });
    t.is(res.status, 400, JSON.stringify(body));
    t.regex(res.body.error.message, field, JSON.stringify(body));
  };
  await refused({ replicas: 2, minReplicas: 1 }, /body\.replicas: give either/);
  await refused({ minReplicas: 3, maxReplicas: 2 }, /body\.minReplicas: minReplicas \(3\) must not be above maxReplicas \(2\)/);
  await refused({ minReplicas: 2 }, /body\.minReplicas: .*maxReplicas \(1\)/);
  await refused({ scaleUpWindow: '500ms' }, /body\.scaleUpWindow: must be between 1s/);
  await refused({ scaleDownWindow: '3d' }, /body\.scaleDownWindow: must be between/);
  await refused({ replicas: 65 }, /replicas/);
  await refused({ targetUtilization: 0 }, /targetUtilization/);
  t.is((await api(hub, 'GET', '/api/v1/deployments/bad', { key: hub.adminKey })).status, 404, 'nothing stored');

  const both = await cli('deploy', 'bad', '--image', IMAGE_1, '--target', 'site=lab', '--replicas', '2', '--max-replicas', '3');
  t.is(both.code, 2);
  t.regex(both.stderr, /--replicas: give either --replicas \(a fixed count\) or --min-replicas\/--max-replicas/);
  t.regex((await cli('deploy', '--help')).stdout.replace(/\s+/g, ' '), /per replica: 3 ready replicas with --max-concurrent 1 --max-queue 10 hold 3 in flight and 30 waiting before 429/);
  const openapi = await api<{ paths: Record<string, Record<string, unknown>> }>(hub, 'GET', '/openapi.json');
  t.truthy(openapi.body.paths['/api/v1/deployments/{service}']?.delete, 'DELETE is documented');
  t.regex(JSON.stringify(openapi.body), /with 3 ready replicas, maxConcurrent 1 and maxQueue 10, a device holds 3 requests in flight and 30 waiting before it answers 429/);
});

test('service update of limits and replicas: the same revision, no rollout, every targeted device gets them at once', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const device = await playDevice(t, hub, 'lim-1', { site: 'lab' });
  const created = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--json'));
  await device.generation(1);

  const queue = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--max-queue', '2', '--json'));
  t.like(queue, { revision: 1, image: IMAGE_1, limits: { maxConcurrent: 1, maxQueue: 2 }, rollout: { id: created.rollout.id } });
  t.is(queue.revisions.length, 1, 'no new revision');
  const second = await device.generation(2);
  t.like(second.services[0], { name: 'iris', revision: 1, image: IMAGE_1, limits: { maxConcurrent: 1, maxQueue: 2, memoryBytes: null, cpus: null } });
  t.false('scale' in second.services[0]!);

  const unchanged = await cli('service', 'update', 'iris', '--max-queue', '2');
  t.not(unchanged.code, 0);
  t.regex(unchanged.stderr, /already has these limits, replicas and log shipping: nothing to change.*\[HUB_E_CONFLICT\]/);
  const sameByRest = await api<ErrorAnswer>(hub, 'POST', '/api/v1/deployments/iris/update', { key: hub.adminKey, json: { maxQueue: 2, maxConcurrent: 1 } });
  t.is(sameByRest.status, 409);
  t.is(sameByRest.body.error.code, 'HUB_E_CONFLICT');
  t.is(jsonOf<Deployment>(t, await cli('service', 'show', 'iris', '--json')).updatedAt, queue.updatedAt, 'nothing written');

  const replicas = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--replicas', '3', '--memory', '64m', '--json'));
  t.like(replicas, { revision: 1, scale: { minReplicas: 3, maxReplicas: 3 }, limits: { maxQueue: 2, memoryBytes: 64 * 1024 * 1024 } });
  t.like((await device.generation(3)).services[0], { revision: 1, scale: { minReplicas: 3, maxReplicas: 3 }, limits: { maxQueue: 2, memoryBytes: 64 * 1024 * 1024 } });
  const widened = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--min-replicas', '1', '--json'));
  t.like(widened.scale, { minReplicas: 1, maxReplicas: 3 }, 'what is not given stays');

  // A new image still makes a revision, with the deployment's limits.
  const moved = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--image', IMAGE_2, '--max-concurrent', '2', '--json'));
  t.like(moved, { revision: 2, limits: { maxConcurrent: 2, maxQueue: 2 } });
  t.like((await device.until('revision 2', (d) => d.services[0]?.revision === 2)).services[0], { image: IMAGE_2, limits: { maxConcurrent: 2 }, scale: { minReplicas: 1, maxReplicas: 3 } });
  const rollouts = (await api<RolloutList>(hub, 'GET', '/api/v1/rollouts?service=iris', { key: hub.adminKey })).body.rollouts;
  t.deepEqual(rollouts.map((r) => r.kind), ['update', 'create'], 'only the image was rolled out');

  const refused = async (body: object, message: RegExp) => {
    const res = await api<ErrorAnswer>(hub, 'POST', '/api/v1/deployments/iris/update', { key: hub.adminKey, json: body });
    t.is(res.status, 400, JSON.stringify(body));
    t.regex(res.body.error.message, message);
  };
  await refused({}, /give at least one change/);
  await refused({ rollout: { strategy: 'canary' } }, /body\.rollout: only a new image or target is rolled out/);
  await refused({ image: IMAGE_1, target: { site: 'field' } }, /body\.target: change the target and the image in two updates/);
  await refused({ maxReplicas: 1, minReplicas: 2 }, /body\.minReplicas/);
  const none = await cli('service', 'update', 'iris');
  t.is(none.code, 2);
  t.regex(none.stderr, /give at least one change/);
  t.is((await api(hub, 'POST', '/api/v1/deployments/nope/update', { key: hub.adminKey, json: { maxQueue: 1 } })).status, 404);
});

test('a new target moves devices in and out through a rollout, batch by batch', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const a = await playDevice(t, hub, 'tgt-a', { site: 'lab' });
  const b = await playDevice(t, hub, 'tgt-b', { site: 'lab' });
  const c = await playDevice(t, hub, 'tgt-c', { site: 'field' });
  const created = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--json'));
  for (const d of [a, b]) {
    await d.generation(1);
    await d.converge();
  }
  await waitFor('the create rollout to succeed', async () => (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${created.rollout.id}`, { key: hub.adminKey })).body.phase === 'succeeded');

  const retarget = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--target', 'site=field', '--strategy', 'batches', '--batch-size', '1', '--max-queue', '4', '--json'));
  t.like(retarget, { revision: 1, target: { site: 'field' }, limits: { maxQueue: 4 }, rollout: { kind: 'retarget', revision: 1, strategy: 'batches', phase: 'running' } });
  t.deepEqual(retarget.rollout.devices, ['tgt-a', 'tgt-b', 'tgt-c']);

  // Batch 1: c joins (it adds before it takes away, though c sorts last); a and b keep it, with the new limits at once.
  const joined = await c.until('iris in', (d) => has(d, 'iris'));
  t.like(joined.services[0], { name: 'iris', revision: 1, image: IMAGE_1, limits: { maxQueue: 4 } });
  await a.until('the new limits', (d) => d.services[0]?.limits.maxQueue === 4);
  await b.until('the new limits', (d) => d.services[0]?.limits.maxQueue === 4);
  t.true(has(a.latest(), 'iris') && has(b.latest(), 'iris'), 'nobody leaves before c runs it');
  await c.converge();
  // Batch 2: a leaves, only once c reported it running; then b, once a reported it gone.
  await a.until('iris gone', (d) => !has(d, 'iris'));
  t.true(has(b.latest(), 'iris'));
  await a.converge();
  await b.until('iris gone', (d) => !has(d, 'iris'));
  await b.converge();

  const rollout = await waitFor('the retarget to succeed', async () => {
    const r = (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${retarget.rollout.id}`, { key: hub.adminKey })).body;
    return r.phase === 'succeeded' ? r : undefined;
  });
  t.deepEqual(rollout.target, { from: { site: 'lab' }, to: { site: 'field' } });
  t.deepEqual(rollout.devices.map((d) => [d.id, d.batch, d.phase]), [['tgt-a', 1, 'healthy'], ['tgt-b', 2, 'healthy'], ['tgt-c', 0, 'healthy']]);
  t.like(jsonOf<Deployment>(t, await cli('service', 'show', 'iris', '--json')), { target: { site: 'field' }, stableRevision: 1, rollout: { kind: 'retarget', phase: 'succeeded' } });

  // Settled: a relabel is decided by the target alone again, at once.
  t.is((await cli('device', 'label', 'tgt-a', 'site=field')).code, 0);
  await a.until('iris back after the relabel', (d) => has(d, 'iris'));
  const same = await cli('service', 'update', 'iris', '--target', 'site=field');
  t.regex(same.stderr, /already targets site=field.*\[HUB_E_CONFLICT\]/);
});

test('an aborted retarget puts the old target back and returns the moved devices', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const a = await playDevice(t, hub, 'ab-a', { site: 'lab' });
  const b = await playDevice(t, hub, 'ab-b', { site: 'field' });
  const created = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--json'));
  await a.generation(1);
  await a.converge();
  await waitFor('the create rollout to succeed', async () => (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${created.rollout.id}`, { key: hub.adminKey })).body.phase === 'succeeded');

  const retarget = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--target', 'site=field', '--strategy', 'batches', '--batch-size', '1', '--json'));
  // b joins first; a would leave only once b runs it.
  const joined = await b.until('iris in', (d) => has(d, 'iris'));
  const busy = await cli('service', 'update', 'iris', '--image', IMAGE_2);
  t.regex(busy.stderr, /moves devices to a new target: let it finish or abort it.*\[HUB_E_CONFLICT\]/);
  t.is((await cli('rollout', 'abort', String(retarget.rollout.id))).code, 0);
  await b.until('iris off again', (d) => d.generation > joined.generation && !has(d, 'iris'));
  t.true(a.received.every((d) => has(d, 'iris')), 'a never lost it');
  t.like(jsonOf<Deployment>(t, await cli('service', 'show', 'iris', '--json')), { target: { site: 'lab' }, rollout: { kind: 'rollback' } });
});

test('a device a retarget planned out but relabelled back in before its turn ends the retarget with the service', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const x = await playDevice(t, hub, 'back-x', { site: 'lab' });
  const y = await playDevice(t, hub, 'back-y', { site: 'field' });
  const created = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--json'));
  await x.generation(1);
  await x.converge();
  await waitFor('the create rollout to succeed', async () => (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${created.rollout.id}`, { key: hub.adminKey })).body.phase === 'succeeded');

  const retarget = jsonOf<Deployment>(t, await cli('service', 'update', 'iris', '--target', 'site=field', '--strategy', 'batches', '--batch-size', '1', '--json'));
  // Batch 1 is y joining; x's turn to leave waits until y reports it running, so x is relabelled before it.
  await y.until('iris in', (d) => has(d, 'iris'));
  t.is((await cli('device', 'label', 'back-x', 'site=field')).code, 0);
  await y.converge();
  // The plan still takes x out in its batch (that is what the rollout says it does) ...
  const gone = await x.until('iris gone in its batch', (d) => !has(d, 'iris'));
  await x.converge();
  await waitFor('the retarget to succeed', async () => (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${retarget.rollout.id}`, { key: hub.adminKey })).body.phase === 'succeeded');
  // ... and once it settles, x is inside the target with no pin holding it out: it gets the service.
  const back = await x.until('iris back once settled', (d) => d.generation > gone.generation && has(d, 'iris'));
  t.like(back.services.find((s) => s.name === 'iris'), { revision: 1, image: IMAGE_1 });
  t.true(has(y.latest(), 'iris'));
});

test('service delete: every device drops it, the hub keeps it as deleted, a retry is answered again, and the name can be deployed again', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const device = await playDevice(t, hub, 'del-1', { site: 'lab' });
  const created = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--replicas', '2', '--json'));
  jsonOf(t, await cli('deploy', 'other', '--image', IMAGE_2, '--target', 'site=lab', '--json'));
  await device.generation(2);

  const asked = await cli('service', 'delete', 'iris');
  t.is(asked.code, 2, 'stdin is not a terminal: nobody to ask');
  t.regex(asked.stderr, /stdin is not a terminal.*pass --yes/);
  const reader = (await api<{ key: string }>(hub, 'POST', '/api/v1/apikeys', { key: hub.adminKey, json: { name: 'ro', scope: 'read' } })).body.key;
  t.is((await api(hub, 'DELETE', '/api/v1/deployments/iris', { key: reader })).status, 403, 'the deploy scope');

  const del = (headers: Record<string, string> = {}) =>
    fetch(`${hub.url}/api/v1/deployments/iris`, { method: 'DELETE', headers: { authorization: `Bearer ${hub.adminKey}`, ...headers } });
  const first = await del({ 'idempotency-key': 'delete-iris-1' });
  t.is(first.status, 200);
  const deleted = (await first.json()) as Deployment;
  t.like(deleted, { service: 'iris', deletedBy: created.createdBy, rollout: { id: created.rollout.id, phase: 'aborted' } });
  t.truthy(deleted.deletedAt);
  const retried = await del({ 'idempotency-key': 'delete-iris-1' });
  t.is(retried.status, 200, 'a retry of the delete that happened answers it again');
  t.is(retried.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(await retried.json(), deleted);
  const again = await del();
  t.is(again.status, 404);
  t.regex(((await again.json()) as ErrorAnswer).error.message, /service iris is not deployed/);

  const dropped = await device.generation(3);
  t.deepEqual(dropped.services.map((s) => s.name), ['other'], 'iris is off the device');
  const aborted = (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${created.rollout.id}`, { key: hub.adminKey })).body;
  t.like(aborted, { phase: 'aborted', reason: `service deleted by ${created.createdBy.keyName} (${created.createdBy.keyId})` });

  t.like((await api<Deployment>(hub, 'GET', '/api/v1/deployments/iris', { key: hub.adminKey })).body, { service: 'iris', deletedAt: deleted.deletedAt });
  t.regex((await cli('service', 'show', 'iris')).stdout, /deleted:\s+\S+ by .* \(key .*\): on no device; its history is kept/);
  t.deepEqual(jsonOf<DeploymentList>(t, await cli('service', 'list', '--json')).deployments.map((d) => d.service), ['other']);
  t.deepEqual(jsonOf<DeploymentList>(t, await cli('service', 'list', '--all', '--json')).deployments.map((d) => [d.service, d.deletedAt !== null]), [['other', false], ['iris', true]]);
  t.regex((await cli('service', 'list', '--all')).stdout, /iris \(deleted /);

  // The same name again: a new deployment and key, counting revisions on from the deleted one (a late
  // report of the old revision 1 must not pass for the new one's); the old one stays in the history.
  const redeployed = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--image', IMAGE_2, '--target', 'site=lab', '--json'));
  t.like(redeployed, { service: 'iris', revision: 2, image: IMAGE_2, deletedAt: null, rollout: { kind: 'create', revision: 2 } });
  t.deepEqual(redeployed.revisions.map((r) => r.revision), [2]);
  t.not(redeployed.keyId, created.keyId);
  t.like((await device.generation(4)).services.find((s) => s.name === 'iris'), { revision: 2, image: IMAGE_2 });
  t.like(jsonOf<Deployment>(t, await cli('service', 'show', 'iris', '--json')), { image: IMAGE_2, deletedAt: null });

  const byCli = jsonOf<Deployment>(t, await cli('service', 'delete', 'iris', '--yes', '--json'));
  t.like(byCli, { service: 'iris', image: IMAGE_2 });
  t.truthy(byCli.deletedAt);
  await device.until('iris gone again', (d) => d.generation === 5 && !has(d, 'iris'));
  const all = jsonOf<DeploymentList>(t, await cli('service', 'list', '--all', '--json')).deployments;
  t.deepEqual(all.map((d) => [d.service, d.image]), [['other', IMAGE_2], ['iris', IMAGE_1], ['iris', IMAGE_2]], 'both deleted ones, oldest deletion first');
  t.true(hub.logs.some((l) => l.msg === 'service deleted' && l.service === 'iris'), 'logged');

  // On from the highest deleted revision, not from the number of deletions.
  const third = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--image', IMAGE_1, '--target', 'site=lab', '--json'));
  t.like(third, { revision: 3, rollout: { revision: 3 } });
  t.like((await device.generation(6)).services.find((s) => s.name === 'iris'), { revision: 3, image: IMAGE_1 });
});
