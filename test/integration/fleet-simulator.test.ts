/**
 * The fleet simulator against a real hub process: simulated devices enroll over REST, speak MQTT v1
 * to the hub's broker, and the hub's own view (GET /api/v1/devices) must agree with what they did.
 * No Docker: the simulator's container runtime is simulated. (1,000 devices are for bench/.)
 */
import test, { type ExecutionContext } from 'ava';
import type { Device, DeviceList } from '../../shared/api/devices.js';
import type { ReportedService } from '../../shared/protocol.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';
import { failureDrawn, startFleet, type Fleet, type FleetOptions } from '../../bench/simulator/fleet-simulator.js';

const image = (hexDigit: string) => `127.0.0.1:5000/sim/x@sha256:${hexDigit.repeat(64)}`;
const SERVICE = 'x';

async function fleetFor(t: ExecutionContext, hub: HubProcess, options: Omit<FleetOptions, 'hub'>): Promise<Fleet> {
  const fleet = await startFleet({ hub, ...options });
  t.teardown(() => fleet.stop());
  t.log(`${fleet.enrollment.devices} devices enrolled in ${fleet.enrollment.ms} ms (slowest request ${fleet.enrollment.maxRequestMs} ms), online in ${fleet.connectMs} ms`);
  return fleet;
}

async function deploy(t: ExecutionContext, hub: HubProcess, img: string): Promise<void> {
  const res = await api(hub, 'POST', '/api/v1/deployments', { key: hub.adminKey, json: { service: SERVICE, image: img, target: { site: 'sim' } } });
  t.is(res.status, 201, JSON.stringify(res.body));
}

/** Tolerates every failure: these tests look at what devices report, not at rollbacks. */
async function update(t: ExecutionContext, hub: HubProcess, img: string): Promise<void> {
  const res = await api(hub, 'POST', `/api/v1/deployments/${SERVICE}/update`, { key: hub.adminKey, json: { image: img, rollout: { maxFailures: '100%' } } });
  t.is(res.status, 200, JSON.stringify(res.body));
}

async function hubDevices(hub: HubProcess): Promise<Device[]> {
  const res = await api<DeviceList>(hub, 'GET', '/api/v1/devices?label=site=sim', { key: hub.adminKey });
  return res.body.devices;
}

/** Every simulated device serves `revision` of the service. */
const allServing = (revision: number) => (f: Fleet) => f.counts(SERVICE).serving[String(revision)] === f.ids.length;

/** The hub's view: the device observed what it was asked and converged, serving `revision`. */
function convergedAt(d: Device, revision: number): boolean {
  const s = d.services[0];
  return d.observedGeneration === d.desiredGeneration && d.phase === 'converged' && s?.phase === 'running' && s.revision === revision && s.servingRevision === revision;
}

test('fifty simulated devices converge on a deploy and on a service update, and the hub sees every step', async (t) => {
  const hub = await startHub(t);
  const fleet = await fleetFor(t, hub, {
    count: 50,
    idPrefix: 'sim',
    labels: () => ({ site: 'sim' }),
    // Pulls longer than the agent's 1 s progress period, so the hub is shown progress.
    timing: { pullMs: { min: 1500, max: 2500 }, startMs: { min: 50, max: 200 }, healthMs: { min: 100, max: 400 } },
    seed: 7,
  });
  t.is((await api<{ devicesOnline: number }>(hub, 'GET', '/healthz')).body.devicesOnline, 50);
  const before = await hubDevices(hub);
  t.true(before.every((d) => d.status === 'online' && d.facts?.agentVersion.endsWith('-fleet-simulator') && d.phase === 'idle'), 'online, marked as simulated, idle');

  // The hub's view while the rollout runs: the phases it was shown.
  const seen: ReportedService[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const d of await hubDevices(hub)) seen.push(...d.services);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const deployedAt = Date.now();
  await deploy(t, hub, image('1'));
  await fleet.waitFor(allServing(1), 30_000, 'every device to run revision 1');
  const first = await waitFor('the hub to see every device converged on revision 1', async () => {
    const devices = await hubDevices(hub);
    return devices.length === 50 && devices.every((d) => convergedAt(d, 1)) && devices;
  });
  watching = false;
  await watcher;
  t.true(first.every((d) => d.desiredGeneration === 1 && d.observedGeneration === 1));
  t.true(seen.some((s) => s.phase === 'pulling' && s.progress !== null && s.progress.current > 0 && s.progress.current < s.progress.total), 'pull progress reached the hub');
  t.true(seen.some((s) => s.phase === 'starting'), 'starting reached the hub');
  const one = await api<Device>(hub, 'GET', `/api/v1/devices/${fleet.ids[0]}`, { key: hub.adminKey });
  t.like(one.body, { observedGeneration: 1, desiredGeneration: 1, phase: 'converged', services: [{ name: SERVICE, revision: 1, image: image('1'), phase: 'running', servingRevision: 1, error: null }] });

  const timeline1 = fleet.timeline(SERVICE, 1);
  t.is(timeline1.length, 50);
  t.true(timeline1.every((e) => e.receivedAt >= deployedAt && e.runningAt !== null && e.runningAt >= e.receivedAt + 1500), 'each device pulled, started and checked health before it ran');

  await update(t, hub, image('2'));
  await fleet.waitFor(allServing(2), 30_000, 'every device to run revision 2');
  const second = await waitFor('the hub to see every device converged on revision 2', async () => {
    const devices = await hubDevices(hub);
    return devices.every((d) => convergedAt(d, 2)) && devices;
  });
  t.true(second.every((d) => d.desiredGeneration === 2 && d.services[0]?.image === image('2')));
  t.true(fleet.timeline(SERVICE, 2).every((e) => e.runningAt !== null && e.failedAttempts === 0));
  t.deepEqual(fleet.counts(SERVICE).phase, { none: 0, idle: 0, reconciling: 0, converged: 50, failed: 0 });
});

test('devices drawn to fail a revision report failed with the agent error codes, keep serving the previous one, and keep failing on retry', async (t) => {
  const hub = await startHub(t);
  const seed = 42;
  const rates = { pull: 0.1, health: 0.2 };
  const fleet = await fleetFor(t, hub, {
    count: 40,
    idPrefix: 'flaky',
    labels: () => ({ site: 'sim' }),
    timing: { pullMs: { min: 100, max: 300 }, startMs: 50, healthMs: { min: 50, max: 150 } },
    // Revision 1 goes well everywhere, so revision 2's failures have something to fall back on.
    failures: ({ revision }) => (revision === 2 ? rates : {}),
    seed,
    retry: { initialMs: 200, maxMs: 400, factor: 2 },
  });
  const pullFails = fleet.ids.filter((id) => failureDrawn(seed, 'pull', rates.pull, id, SERVICE, 2));
  const healthFails = fleet.ids.filter((id) => !pullFails.includes(id) && failureDrawn(seed, 'health', rates.health, id, SERVICE, 2));
  t.log(`seed ${seed}: pull fails on ${pullFails.join(' ')}; health fails on ${healthFails.join(' ')}`);
  t.true(pullFails.length > 0 && healthFails.length > 0, 'the seed picks some of each');

  await deploy(t, hub, image('1'));
  await fleet.waitFor(allServing(1), 30_000, 'every device to run revision 1');
  await update(t, hub, image('2'));
  const failing = new Set([...pullFails, ...healthFails]);
  await fleet.waitFor(
    (f) => f.counts(SERVICE).serving['2'] === 40 - failing.size && [...failing].every((id) => (f.device(id).state().timeline.find((e) => e.revision === 2)?.failedAttempts ?? 0) >= 2),
    30_000,
    'the others on revision 2, the failing ones failed twice',
  );
  const devices = await waitFor('the hub to show every device failed or converged', async () => {
    const list = await hubDevices(hub);
    return list.every((d) => d.observedGeneration === 2 && (failing.has(d.id) ? d.phase === 'failed' : convergedAt(d, 2))) && list;
  });
  for (const d of devices.filter((x) => failing.has(x.id))) {
    const code = pullFails.includes(d.id) ? 'AGENT_E_PULL_FAILED' : 'AGENT_E_HEALTH_FAILED';
    t.like(d.services[0], { revision: 2, image: image('2'), phase: 'failed', servingRevision: 1, error: { code } }, d.id);
  }
  t.regex(devices.find((d) => healthFails.includes(d.id))!.services[0]!.error!.message, /^\/health says failed: .*simulated/);
  t.true(fleet.timeline(SERVICE, 2).filter((e) => failing.has(e.deviceId)).every((e) => e.runningAt === null), 'a device chosen to fail a revision never runs it');
});

test('a device taken offline shows lost, misses an update and an abandoned one, and converges to the latest when it is back', async (t) => {
  const hub = await startHub(t);
  const fleet = await fleetFor(t, hub, {
    count: 4,
    idPrefix: 'roam',
    labels: () => ({ site: 'sim' }),
    // Revision 2 pulls for a minute: it is still pulling when revision 3 replaces it.
    timing: ({ revision }) => ({ pullMs: revision === 2 ? 60_000 : 200, startMs: 50, healthMs: 100 }),
  });
  const [roamer, ...others] = fleet.ids as [string, ...string[]];
  const hubDevice = async (id: string) => (await api<Device>(hub, 'GET', `/api/v1/devices/${id}`, { key: hub.adminKey })).body;

  await deploy(t, hub, image('1'));
  await fleet.waitFor(allServing(1), 30_000, 'every device to run revision 1');
  fleet.device(roamer).goOffline();
  t.is(fleet.device(roamer).state().connection, 'offline');
  await waitFor('the hub to see the last will', async () => {
    const d = await hubDevice(roamer);
    return d.status === 'offline' && d.offlineReason === 'lost';
  });

  await update(t, hub, image('2'));
  await fleet.waitFor((f) => others.every((id) => f.device(id).state().services[0]?.phase === 'pulling'), 10_000, 'the others to pull revision 2');
  await update(t, hub, image('3'));
  await fleet.waitFor((f) => others.every((id) => f.device(id).state().services[0]?.servingRevision === 3), 15_000, 'the others to abandon revision 2 and run 3');
  t.true(fleet.timeline(SERVICE, 2).every((e) => e.runningAt === null && e.failedAttempts === 0), 'revision 2 was abandoned, not failed');
  t.like(fleet.device(roamer).state(), { desired: { generation: 1 }, services: [{ revision: 1, servingRevision: 1 }] }, 'offline, it heard nothing');

  await fleet.device(roamer).goOnline();
  await fleet.waitFor((f) => f.device(roamer).state().services[0]?.servingRevision === 3, 15_000, 'the roamer to run revision 3');
  const back = await waitFor('the hub to see the roamer online and converged', async () => {
    const d = await hubDevice(roamer);
    return d.status === 'online' && convergedAt(d, 3) && d;
  });
  t.like(back, { desiredGeneration: 3, observedGeneration: 3, offlineReason: null });
});

test('the simulator refuses hubs off loopback, and devices that cannot connect give up after the bounded attempts', async (t) => {
  const hub = await startHub(t);
  const base = { count: 2, labels: () => ({ site: 'sim' }), timing: { pullMs: 0, startMs: 0, healthMs: 0 } };
  await t.throwsAsync(startFleet({ ...base, idPrefix: 'far', hub: { ...hub, url: 'http://192.0.2.10:8080' } }), { message: /not a loopback address/ });
  // The hub's HTTP port answers MQTT's CONNECT with an HTTP error: every attempt is refused.
  const started = Date.now();
  await t.throwsAsync(
    startFleet({ ...base, idPrefix: 'lost', hub: { ...hub, mqtt: hub.http }, connect: { maxAttempts: 3, backoff: { initialMs: 50, maxMs: 100, factor: 2 } } }),
    { message: /lost-\d gave up after 3 connection attempts/ },
  );
  t.log(`gave up after ${Date.now() - started} ms`);
  t.true(Date.now() - started < 10_000, 'bounded');
});
