/**
 * The gateway over real scoring containers (the Node runtime on the rig's base image, host
 * networking): three replicas share the load, and one killed with Docker under load fails only the
 * request inside it; the gateway takes it out of the rotation and tells the reconciler once.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { startGateway } from '../../agent/gateway/server.js';
import { httpHealthProbe } from '../../agent/reconcile/health-probe.js';
import { RouteTable, type Replica } from '../../agent/reconcile/routes.js';
import { SAMPLE_BODY, startScoringContainer, type ScoringContainer } from '../../bench/lib/scoring-container.js';
import { systemClock } from '../../shared/clock.js';
import { hashSecret } from '../../shared/secrets.js';
import { waitFor } from '../helpers/wait.js';

const KEY = randomBytes(16).toString('hex');
/** Each container takes one request at a time, this long. */
const SERVICE_MS = 50;
const CLIENTS = 6;

interface Result {
  status: number;
  started: number;
  ended: number;
}

test('a replica killed under load: only the request inside it fails, later ones all succeed on the others', async (t) => {
  t.timeout(5 * 60_000);
  const containers: ScoringContainer[] = [];
  t.teardown(() => Promise.all(containers.map((c) => c.stop())));
  for (let i = 0; i < 3; i++) containers.push(await startScoringContainer({ cores: '0-1', serviceMs: SERVICE_MS, log: (m) => t.log(m) }));
  const replicas: Replica[] = containers.map((c) => ({ container: `scorer-${c.port}`, port: c.port }));

  const routes = new RouteTable();
  routes.set(
    { name: 'iris', revision: 1, image: `reg/iris@sha256:${'0'.repeat(64)}`, limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null }, keyHash: hashSecret(KEY), models: [] },
    replicas,
  );
  const down: Array<{ replica: Replica; reason: string; at: number }> = [];
  const gateway = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    routes,
    desired: () => ['iris'],
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    health: httpHealthProbe,
    healthIntervalMs: 1000,
    onReplicaDown: (_service, replica, reason) => down.push({ replica, reason, at: Date.now() }),
  });
  t.teardown(() => gateway.close());
  const client = new Agent();
  t.teardown(() => client.destroy());

  const results: Result[] = [];
  let stopping = false;
  const loop = async () => {
    while (!stopping) {
      const started = Date.now();
      const res = await request(`${gateway.url}/v1/services/iris/score`, {
        dispatcher: client,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: SAMPLE_BODY,
      });
      await res.body.dump();
      results.push({ status: res.statusCode, started, ended: Date.now() });
    }
  };
  const clients = Array.from({ length: CLIENTS }, loop);

  await waitFor('every replica serving', () => results.length >= 60, 60_000);
  t.deepEqual(gateway.load('iris').ready, 3);
  await containers[1]!.stop();
  const killedAt = Date.now();
  await waitFor('the killed replica out of rotation', () => down.length === 1, 30_000);
  const ejectedAt = down[0]!.at;
  await waitFor('requests after the ejection', () => results.filter((r) => r.started > ejectedAt).length >= 60, 60_000);
  stopping = true;
  await Promise.all(clients);

  t.is(down.length, 1, 'the reconciler hears once');
  t.deepEqual(down[0]!.replica, replicas[1]);
  t.is(gateway.load('iris').ready, 2);
  const failed = results.filter((r) => r.status !== 200);
  t.true(
    failed.every((r) => r.status === 502 && r.started <= killedAt),
    `only requests under way at the kill may fail: ${JSON.stringify(failed)}`,
  );
  t.true(failed.length <= 1, `at most the one request inside the killed replica (maxConcurrent 1): ${failed.length} failed`);
  t.true(results.filter((r) => r.started > ejectedAt).every((r) => r.status === 200));
  t.log(`${results.length} requests, ${failed.length} failed; ejected ${ejectedAt - killedAt} ms after the kill returned (${down[0]!.reason})`);
});
