/**
 * The device's scoring gateway, end to end: a hub builds two scoring images (the python and the node
 * fixture app, linux/amd64), deploys the first to an enrolled agent, and clients score through the
 * agent's gateway with the service key: key checks, per-service limits, the container's swagger
 * document, the gateway's per-service counters against the requests the test made, and a
 * `service update` under a bounded load loop that must see no 5xx and no connection error while
 * the gateway switches containers.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { request } from 'undici';
import { LATENCY_BOUNDS_MS, type ServiceCounters } from '../../agent/gateway/metrics.js';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
/** Bounds of the load loop around the update: it stops at whichever comes first. */
const LOAD_MAX_REQUESTS = 5000;
const LOAD_MAX_MS = 5 * 60_000;

const device = async (hub: HubProcess, id: string) => (await api<Device>(hub, 'GET', `/api/v1/devices/${id}`, { key: hub.adminKey })).body;

/** The gateway's cumulative counters for a service, from its listing (which needs the service's key). */
async function countersOf(gateway: string, service: string, key: string): Promise<ServiceCounters> {
  const listed = (await (await request(`${gateway}/v1/services`, { headers: { authorization: `Bearer ${key}` } })).body.json()) as { services: Array<{ name: string; metrics: ServiceCounters }> };
  return listed.services.find((s) => s.name === service)!.metrics;
}

async function post(url: string, body: unknown, key?: string): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

test('the gateway checks the key, enforces limits, serves swagger, and keeps serving through service update', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const deviceId = `gw-${randomBytes(3).toString('hex')}`;
  t.teardown(async () => {
    const listed = await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`]);
    for (const id of listed.stdout.split('\n').filter(Boolean)) await exec('docker', ['rm', '-f', id]);
    for (const repo of ['py', 'js', 'broken']) await deleteFromRegistry(registry, `${prefix}/${repo}`, 'v1').catch(() => undefined);
  });

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  const common = ['--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--env', 'FIXTURE_SLOW_RUN_MS=1500', '--json'];
  jsonOf(t, await cli('manifest', 'create', 'py', '--runtime', 'python', '--score', join(FIXTURES, 'python', 'linear', 'score.py'), ...common));
  jsonOf(t, await cli('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), ...common));
  const py = jsonOf<Image>(t, await cli('image', 'build', 'py', '--platform', 'linux/amd64', '--json'));
  const js = jsonOf<Image>(t, await cli('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  // Its smoke test fails (a syntax error), but the image is pushed: a deployment can still name it by digest.
  jsonOf(t, await cli('manifest', 'create', 'broken', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'syntax-error', 'score.js'), ...common));
  const broken = JSON.parse((await cli('image', 'build', 'broken', '--platform', 'linux/amd64', '--json')).stdout) as Image;
  t.is(broken.status, 'failed');

  const agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token: await enrollDevice(hub, deviceId, { site: 'lab' }), extraArgs: ['--platform', 'linux/amd64'] });
  const deployed = jsonOf<DeploymentCreated>(t, await cli('deploy', 'scorer', '--build', String(py.id), '--target', 'site=lab', '--max-concurrent', '1', '--max-queue', '2', '--json'));
  const ready = await waitFor('the service running on the device', async () => {
    const d = await device(hub, deviceId);
    return d.services[0]?.phase === 'running' && d.gateway !== null ? d : undefined;
  }, LONG, 1000);
  const gateway = ready.gateway!;
  t.regex(gateway, /^http:\/\/127\.0\.0\.1:\d+$/);
  const scoreUrl = `${gateway}/v1/services/scorer/score`;
  const { sample } = JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8')) as { sample: { features: number[] } };

  // The key.
  const none = await post(scoreUrl, sample);
  t.is(none.status, 401);
  t.is(none.body.error.code, 'GATEWAY_E_UNAUTHENTICATED');
  t.is((await post(scoreUrl, sample, `${deployed.key}x`)).status, 401);
  const ok = await post(scoreUrl, sample, deployed.key);
  t.is(ok.status, 200, JSON.stringify(ok.body));
  t.is(ok.body.class, 'setosa');
  const invalid = await post(scoreUrl, { features: [1, 2] }, deployed.key);
  t.is(invalid.status, 400, 'the container answers schema violations; the gateway passes them on');
  t.is((await post(`${gateway}/v1/services/nope/score`, sample, deployed.key)).status, 404);

  // The same through the CLI: the hub says where the device's gateway is.
  const inputFile = join(await tempDir(t), 'input.json');
  await writeFile(inputFile, JSON.stringify(sample));
  const scored = await cli.withEnv({ EDGEML_SERVICE_KEY: deployed.key })('score', 'scorer', '--device', deviceId, '--input', inputFile, '--json');
  t.is(scored.code, 0, scored.stderr);
  t.is((JSON.parse(scored.stdout) as { class: string }).class, 'setosa');
  const badKey = await cli('score', 'scorer', '--device', deviceId, '--input', inputFile, '--key', 'nope');
  t.is(badKey.code, 1);
  t.regex(badKey.stderr, /answered 401: .*\[GATEWAY_E_UNAUTHENTICATED\].*\[CLI_E_SCORE_FAILED\]/);

  const swagger = (await (await request(`${gateway}/v1/services/scorer/swagger.json`)).body.json()) as { servers: Array<{ url: string }>; paths: Record<string, unknown> };
  t.deepEqual(swagger.servers, [{ url: `${gateway}/v1/services/scorer` }]);
  t.truthy(swagger.paths['/score']);
  const listed = (await (await request(`${gateway}/v1/services`, { headers: { authorization: `Bearer ${deployed.key}` } })).body.json()) as { services: Array<{ name: string; revision: number }> };
  t.like(listed.services[0], { name: 'scorer', revision: 1 });

  // The gateway counted what this test sent it: 3 without a good key (one through the CLI), 1 answered
  // 400 by the container, 2 served; the unknown service is not counted.
  const before = await countersOf(gateway, 'scorer', deployed.key);
  t.like(before, { requests: 6, unauthenticated: 3, rejected: 0, upstreamErrors: 0, aborted: 0, responses: { '2xx': 2, '4xx': 4, '5xx': 0 } });

  // maxConcurrent 1 + maxQueue 2: of 10 slow requests at once, 3 are served and 7 refused at once.
  const burst = await Promise.all(Array.from({ length: 10 }, () => post(scoreUrl, { ...sample, fixture: 'slow' }, deployed.key)));
  const statuses = burst.map((r) => r.status).sort();
  t.deepEqual(statuses, [200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
  const refused = burst.find((r) => r.status === 429)!;
  t.is(refused.headers['retry-after'], '1');
  t.is(refused.body.error.code, 'GATEWAY_E_QUEUE_FULL');
  const afterBurst = await countersOf(gateway, 'scorer', deployed.key);
  t.like(afterBurst, { requests: 16, unauthenticated: 3, rejected: 7, queueTimeouts: 0, upstreamErrors: 0, aborted: 0, responses: { '2xx': 5, '4xx': 11, '5xx': 0 } });
  // The three served each took the fixture's 1.5 s at least: all in buckets above 1000 ms.
  const timed = afterBurst.latencyMs.counts.map((n, i) => n - before.latencyMs.counts[i]!);
  t.deepEqual(afterBurst.latencyMs.boundsMs, LATENCY_BOUNDS_MS);
  t.is(timed.reduce((a, b) => a + b), 3);
  t.is(timed.slice(0, LATENCY_BOUNDS_MS.indexOf(1000) + 1).reduce((a, b) => a + b), 0);

  // service update under load: same URL, same key, never a 5xx or a dropped connection.
  const seen = new Map<string, number>();
  let stop = false;
  const started = Date.now();
  const load = (async () => {
    for (let i = 0; i < LOAD_MAX_REQUESTS && !stop && Date.now() - started < LOAD_MAX_MS; i++) {
      const outcome = await post(scoreUrl, sample, deployed.key).then(
        (r) => String(r.status),
        (err: Error) => `error ${err.message}`,
      );
      seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
    }
  })();
  const updated = await cli('service', 'update', 'scorer', '--build', String(js.id), '--json');
  t.is(updated.code, 0, updated.stderr);
  await waitFor('revision 2 serving', async () => {
    const d = await device(hub, deviceId);
    return d.services[0]?.servingRevision === 2 && d.services[0].phase === 'running';
  }, LONG, 500);
  // A little traffic on the new container before stopping the loop.
  const after = (seen.get('200') ?? 0) + 20;
  await waitFor('requests after the switch', () => (seen.get('200') ?? 0) >= after || Date.now() - started > LOAD_MAX_MS, 60_000);
  stop = true;
  await load;
  t.log(`load loop: ${JSON.stringify(Object.fromEntries(seen))}`);
  t.deepEqual([...seen.keys()].filter((k) => k !== '200' && k !== '429'), [], 'only 200 and 429 during the update');
  t.true((seen.get('200') ?? 0) > 20);
  t.like(await countersOf(gateway, 'scorer', deployed.key), {
    requests: afterBurst.requests + (seen.get('200') ?? 0) + (seen.get('429') ?? 0),
    rejected: afterBurst.rejected + (seen.get('429') ?? 0),
    upstreamErrors: 0,
    aborted: 0,
    responses: { '2xx': afterBurst.responses['2xx'] + (seen.get('200') ?? 0), '5xx': 0 },
  }, "the gateway's counters agree with what the clients saw through the switch");
  const services = (await (await request(`${gateway}/v1/services`, { headers: { authorization: `Bearer ${deployed.key}` } })).body.json()) as { services: Array<{ name: string; revision: number; image: string }> };
  t.like(services.services[0], { name: 'scorer', revision: 2, image: js.ref! });
  t.is((await post(scoreUrl, sample, deployed.key)).body.class, 'setosa', 'the same key and URL answer from the new revision');

  // A new image whose health check fails: the device reports failed and revision 2 keeps serving.
  t.is((await cli('service', 'update', 'scorer', '--image', broken.ref!)).code, 0);
  const failed = await waitFor('the device to report the failed revision', async () => {
    const d = await device(hub, deviceId);
    return d.services[0]?.revision === 3 && d.services[0].phase === 'failed' ? d : undefined;
  }, LONG, 500);
  t.is(failed.services[0]?.servingRevision, 2);
  t.is(failed.services[0]?.error?.code, 'AGENT_E_HEALTH_FAILED');
  t.regex(failed.services[0]?.error?.message ?? '', /SyntaxError/);
  t.is((await post(scoreUrl, sample, deployed.key)).status, 200, 'still served by revision 2');
  t.true(agent.running);
});
