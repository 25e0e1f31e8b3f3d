/**
 * Rollouts on the fleet simulator (simulated devices speaking real MQTT to a real hub; no Docker):
 * pause and resume, a hub killed mid-rollout, an offline device coming back after success and after
 * an abort, and 1,000 devices with random failures under and over the threshold (times printed, no
 * timing assertion).
 */
import test, { type ExecutionContext } from 'ava';
import { ACTIVE_ROLLOUT_PHASES, type Rollout, type RolloutRequest } from '../../shared/api/rollouts.js';
import { cliFor } from '../helpers/cli.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';
import { startFleet, type Fleet, type FleetOptions } from '../../bench/simulator/fleet-simulator.js';

const SERVICE = 'x';
const image = (hexDigit: string) => `127.0.0.1:5000/sim/x@sha256:${hexDigit.repeat(64)}`;
const FAST = { pullMs: { min: 100, max: 300 }, startMs: 50, healthMs: { min: 50, max: 150 } };

async function fleetFor(t: ExecutionContext, hub: HubProcess, options: Omit<FleetOptions, 'hub' | 'idPrefix' | 'labels'> & { labels?: FleetOptions['labels'] }): Promise<Fleet> {
  const fleet = await startFleet({ hub, idPrefix: 'sim', labels: () => ({ site: 'sim' }), ...options });
  t.teardown(() => fleet.stop());
  return fleet;
}

/** Deploys (or updates) the service and returns the id of the rollout it started. */
async function change(t: ExecutionContext, hub: HubProcess, img: string, rollout: RolloutRequest = {}, create = false): Promise<number> {
  const res = create
    ? await api<{ rollout: { id: number } }>(hub, 'POST', '/api/v1/deployments', { key: hub.adminKey, json: { service: SERVICE, image: img, target: { site: 'sim' }, rollout } })
    : await api<{ rollout: { id: number } }>(hub, 'POST', `/api/v1/deployments/${SERVICE}/update`, { key: hub.adminKey, json: { image: img, rollout } });
  t.true(res.status === 200 || res.status === 201, JSON.stringify(res.body));
  return res.body.rollout.id;
}

const rolloutOf = async (hub: HubProcess, id: number) => (await api<Rollout>(hub, 'GET', `/api/v1/rollouts/${id}`, { key: hub.adminKey })).body;
const act = async (hub: HubProcess, id: number, action: 'pause' | 'resume' | 'abort') => api<Rollout>(hub, 'POST', `/api/v1/rollouts/${id}/${action}`, { key: hub.adminKey });

function finished(hub: HubProcess, id: number, timeoutMs = 120_000): Promise<Rollout> {
  return waitFor(`rollout ${id} to finish`, async () => {
    const r = await rolloutOf(hub, id);
    return ACTIVE_ROLLOUT_PHASES.includes(r.phase) ? undefined : r;
  }, timeoutMs, 200);
}

const allServing = (revision: number) => (f: Fleet) => f.counts(SERVICE).serving[String(revision)] === f.ids.length;

/** No device moved before every device of the batch before it was done. */
function inOrder(t: ExecutionContext, r: Rollout): void {
  for (const d of r.devices) {
    for (const e of r.devices.filter((x) => x.batch === d.batch - 1 && x.doneAt)) {
      t.true(Date.parse(d.movedAt!) >= Date.parse(e.doneAt!), `${d.id} (batch ${d.batch + 1}) moved after ${e.id} was done`);
    }
  }
}

test('pause during a batch: no new device moves; resume finishes it', async (t) => {
  const hub = await startHub(t);
  const fleet = await fleetFor(t, hub, { count: 12, timing: { pullMs: { min: 800, max: 1200 }, startMs: 100, healthMs: 100 }, seed: 3 });
  await finished(hub, await change(t, hub, image('1'), {}, true));
  const id = await change(t, hub, image('2'), { strategy: 'batches', batchSize: '4' });
  await waitFor('batch 1 to move', async () => (await rolloutOf(hub, id)).devices.some((d) => d.movedAt), 30_000, 50);
  t.is((await act(hub, id, 'pause')).status, 200);
  // Long enough for batch 1 to finish and for batches 2 and 3 to have started, were it running.
  await new Promise((r) => setTimeout(r, 4000));
  const paused = await rolloutOf(hub, id);
  t.is(paused.phase, 'paused');
  t.deepEqual(paused.devices.filter((d) => d.movedAt).map((d) => d.batch), [0, 0, 0, 0], 'only batch 1 moved');
  t.is(paused.counts.healthy, 4, 'the devices already moving finished');
  t.is((await act(hub, id, 'pause')).status, 409, 'a paused rollout cannot be paused again');

  t.is((await act(hub, id, 'resume')).status, 200);
  const done = await finished(hub, id);
  t.is(done.phase, 'succeeded');
  inOrder(t, done);
  await fleet.waitFor(allServing(2), 30_000, 'every device on revision 2');
});

test('a hub killed (-9) mid-rollout resumes it after a restart and completes it, in order', async (t) => {
  const hub = await startHub(t);
  const fleet = await fleetFor(t, hub, { count: 8, timing: { pullMs: { min: 1500, max: 2000 }, startMs: 100, healthMs: 200 }, seed: 5, connect: { maxAttempts: 60 } });
  await finished(hub, await change(t, hub, image('1'), {}, true));
  const id = await change(t, hub, image('2'), { strategy: 'batches', batchSize: '2' });
  await waitFor('batch 2 to move', async () => (await rolloutOf(hub, id)).devices.some((d) => d.batch === 1 && d.movedAt), 60_000, 50);
  await hub.kill('SIGKILL');
  const again = await startHub(t, ['--http', hub.http, '--mqtt', hub.mqtt], { data: hub.data });
  const done = await finished(again, id);
  t.is(done.phase, 'succeeded');
  t.is(done.counts.healthy, 8);
  inOrder(t, done);
  await fleet.waitFor(allServing(2), 60_000, 'every device on revision 2');
});

test('an offline device does not hold the rollout; back, it converges to the final revision, and after an abort to the rolled-back one', async (t) => {
  const hub = await startHub(t);
  const fleet = await fleetFor(t, hub, { count: 6, timing: FAST, seed: 9 });
  await finished(hub, await change(t, hub, image('1'), {}, true));
  const awayId = fleet.ids[5]!;
  const away = fleet.device(awayId);
  away.goOffline();
  await waitFor('the hub to see it offline', async () => (await api<{ status: string }>(hub, 'GET', `/api/v1/devices/${awayId}`, { key: hub.adminKey })).body.status === 'offline', 30_000, 100);

  const id = await change(t, hub, image('2'), { strategy: 'batches', batchSize: '2' });
  const done = await finished(hub, id);
  t.is(done.phase, 'succeeded');
  t.is(done.counts.offline, 1);
  t.is(done.counts.healthy, 5);
  await away.goOnline();
  await fleet.waitFor(allServing(2), 30_000, 'the device back, on revision 2');

  // Offline again; this rollout moves it (to 3) while it is away, then is aborted: it must come back on 2.
  away.goOffline();
  await waitFor('the hub to see it offline', async () => (await api<{ status: string }>(hub, 'GET', `/api/v1/devices/${awayId}`, { key: hub.adminKey })).body.status === 'offline', 30_000, 100);
  const third = await change(t, hub, image('3'), { strategy: 'batches', batchSize: '3', soak: '1h' });
  await waitFor('the batch with the offline device to move', async () => (await rolloutOf(hub, third)).devices.find((d) => d.id === awayId)?.movedAt, 30_000, 100);
  t.is((await act(hub, third, 'abort')).status, 200);
  const aborted = await rolloutOf(hub, third);
  t.is(aborted.phase, 'aborted');
  const rollback = await finished(hub, aborted.rolledBackBy!);
  t.like(rollback, { kind: 'rollback', revision: 2 });
  await away.goOnline();
  await fleet.waitFor(allServing(2), 30_000, 'every device on revision 2, the one that was away included');
  t.false(fleet.timeline(SERVICE, 3).some((e) => e.deviceId === awayId && e.runningAt !== null), 'it never ran the aborted revision');
});

test('1,000 devices in batches of 20 %: 2 % failures under a 5 % threshold complete with failures; 10 % abort and roll back', async (t) => {
  t.timeout(10 * 60_000);
  const hub = await startHub(t);
  const fleet = await fleetFor(t, hub, {
    count: 1000,
    timing: FAST,
    failures: ({ revision }) => (revision === 2 ? { health: 0.02 } : revision === 3 ? { health: 0.1 } : {}),
    seed: 11,
  });
  t.log(`1,000 devices enrolled in ${fleet.enrollment.ms} ms, online in ${fleet.connectMs} ms`);
  let started = Date.now();
  await finished(hub, await change(t, hub, image('1'), {}, true), 5 * 60_000);
  t.log(`deploy (all at once): converged in ${Date.now() - started} ms`);

  // A failing device is retried until its device timeout before it counts as failed, and every
  // batch holds a device that always fails (sticky draws): each batch takes the timeout.
  const rollout = { strategy: 'batches', batchSize: '20%', maxFailures: '5%', deviceTimeout: '8s' } as const;
  started = Date.now();
  const okId = await change(t, hub, image('2'), rollout);
  const ok = await finished(hub, okId, 5 * 60_000);
  t.log(`2 % failures: ${ok.phase} in ${Date.now() - started} ms, ${ok.counts.healthy} healthy, ${ok.counts.failed} failed`);
  t.is(ok.phase, 'completed-with-failures');
  t.true(ok.counts.failed! > 0 && ok.counts.failed! <= 50, `${ok.counts.failed} failed`);
  t.is(ok.counts.healthy, 1000 - ok.counts.failed!);
  const failedOnTwo = ok.devices.filter((d) => d.phase === 'failed').map((d) => d.id);
  t.regex(ok.reason ?? '', new RegExp(`^${failedOnTwo.length} of 1000 devices failed \\(the rollout tolerates 50\\): ${failedOnTwo[0]}, `));
  inOrder(t, ok);
  const watched = await cliFor(hub, hub.adminKey)('rollout', 'status', String(okId), '--watch', '--json');
  t.is(watched.code, 1, 'status --watch exits 1: some devices failed');
  // With --json the error is JSON on stderr too.
  const watchedError = (JSON.parse(watched.stderr) as { error: { code: string; message: string } }).error;
  t.is(watchedError.code, 'CLI_E_ROLLOUT_FAILED');
  t.regex(watchedError.message, new RegExp(`rollout ${okId} completed with failures: ${failedOnTwo.length} of 1000 devices failed\n  ${failedOnTwo[0]}: not healthy within 8s \\(last: AGENT_E_HEALTH_FAILED`));

  started = Date.now();
  const bad = await finished(hub, await change(t, hub, image('3'), rollout), 5 * 60_000);
  t.is(bad.phase, 'aborted');
  t.regex(bad.reason ?? '', /devices failed \(the rollout tolerates 50\)/);
  const rollback = await finished(hub, bad.rolledBackBy!, 5 * 60_000);
  t.log(`10 % failures: aborted after ${bad.devices.filter((d) => d.movedAt).length} moved devices; rolled back in ${Date.now() - started} ms in all`);
  const moved = bad.devices.filter((d) => d.movedAt).map((d) => d.id);
  t.deepEqual(rollback.devices.map((d) => d.id), moved, 'exactly the moved devices go back');
  t.true(moved.length < 1000, 'the rollout stopped before the whole fleet');
  // Devices that always fail revision 2 fail going back to it too: the rollback says so.
  const failBack = moved.filter((id) => failedOnTwo.includes(id));
  t.is(rollback.phase, failBack.length ? 'completed-with-failures' : 'succeeded');
  t.deepEqual(rollback.devices.filter((d) => d.phase === 'failed').map((d) => d.id), failBack);
  // Back where revision 2 left them: serving it, but for the devices that fail it (they keep serving
  // what they had, and retry).
  await fleet.waitFor((f) => f.counts(SERVICE).serving['2'] === 1000 - failedOnTwo.length, 120_000, 'the fleet back on revision 2');
});
