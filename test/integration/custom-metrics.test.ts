/**
 * Custom metrics end to end with a real hub, agent, registry and scoring container: a score.js
 * that calls `metrics.count` and `metrics.observe` (test/fixtures/custom-metrics) scores a known
 * load through the device's gateway; the figures the agent reads from the container's
 * `GET /metrics` arrive as interval deltas and add up at the hub exactly, in
 * `edgeml telemetry SERVICE --json` and in /metrics. The device's `lastSeen` moves while only
 * telemetry arrives, and `telemetry SERVICE` on a name the hub never heard of fails.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { Image } from '../../shared/api/images.js';
import type { ServiceTelemetry } from '../../shared/api/telemetry.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir } from '../helpers/edgeml-process.js';
import { deviceOf, enrollDevice, servingRevision } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/custom-metrics/', import.meta.url));
const RUNTIMES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const REQUESTS = 12;
/** Petal lengths sent, one per request: their count, sum, min and max are what the hub must show. */
const PETALS = Array.from({ length: REQUESTS }, (_, i) => 1 + i * 0.5);

test('custom metrics from score.js add up exactly at the hub; lastSeen moves with telemetry; an unknown service is an error', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const deviceId = `cm-${randomBytes(3).toString('hex')}`;
  t.teardown(async () => void (await deleteFromRegistry(registry, `${prefix}/counting`, 'v1').catch(() => undefined)));

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(RUNTIMES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'counting', '--runtime', 'node', '--score', join(FIXTURE, 'score.js'), '--deps', join(FIXTURE, 'package.json'), '--model', 'iris-linear:1', '--schema', join(RUNTIMES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'counting', '--platform', 'linux/amd64', '--json'));
  t.is(image.status, 'succeeded');

  const token = await enrollDevice(hub, deviceId, { site: 'cm' });
  const agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token, data: await tempDir(t, 'edgeml-agent-'), extraArgs: ['--platform', 'linux/amd64', '--telemetry-interval', '1s'] });
  t.teardown(() => agent.kill('SIGTERM'));
  const deployed = jsonOf<DeploymentCreated>(t, await cli('deploy', 'counting', '--build', String(image.id), '--target', 'site=cm', '--json'));
  const { gateway } = await servingRevision(hub, deviceId, 1, LONG);

  for (const petal of PETALS) {
    const res = await request(`${gateway}/v1/services/counting/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${deployed.key}` },
      body: JSON.stringify({ features: [5.1, 3.5, petal, 0.2] }),
    });
    t.is(res.statusCode, 200, await res.body.text());
  }

  // Sent every second as deltas: the hub's sum reaches the load and stays there (nothing counted twice).
  const report = await waitFor(
    'the hub to count every request in the custom figures',
    async () => {
      const r = jsonOf<ServiceTelemetry>(t, await cli('telemetry', 'counting', '--since', '1h', '--json'));
      return r.custom?.counters.scored === REQUESTS && r.custom.observations.petal_length?.count === REQUESTS && r;
    },
    60_000,
    500,
  );
  const petalSum = PETALS.reduce((a, b) => a + b, 0);
  t.deepEqual(report.custom!.counters, { 'features.total': REQUESTS * 4, scored: REQUESTS });
  t.like(report.custom!.observations.petal_length, { count: REQUESTS, min: PETALS[0], max: PETALS.at(-1) });
  t.true(Math.abs(report.custom!.observations.petal_length!.sum - petalSum) < 1e-9);
  t.true(Math.abs(report.custom!.observations.petal_length!.mean - petalSum / REQUESTS) < 1e-9);
  const human = await cli('telemetry', 'counting', '--since', '1h');
  t.regex(human.stdout, new RegExp(`^scored +count +${REQUESTS} `, 'm'));
  t.regex(human.stdout, new RegExp(`^petal_length +observe +${REQUESTS} `, 'm'));

  // /metrics: the same totals, since the hub started.
  const checkScrape = async (when: string) => {
    const scrape = await (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${hub.adminKey}` } })).text();
    t.regex(scrape, new RegExp(`^edgeml_custom_total\\{service="counting",name="scored"\\} ${REQUESTS}$`, 'm'), when);
    t.regex(scrape, new RegExp(`^edgeml_custom_total\\{service="counting",name="features.total"\\} ${REQUESTS * 4}$`, 'm'), when);
    t.regex(scrape, new RegExp(`^edgeml_custom_observation_count\\{service="counting",name="petal_length"\\} ${REQUESTS}$`, 'm'), when);
    const sumLine = new RegExp('^edgeml_custom_observation_sum\\{service="counting",name="petal_length"\\} (\\S+)$', 'm').exec(scrape);
    t.truthy(sumLine, `${when}: ${scrape}`);
    t.true(Math.abs(Number(sumLine![1]) - petalSum) < 1e-9, when);
  };
  await checkScrape('once the load is counted');

  // The agent sends no status and no report while it only serves: lastSeen moves with its telemetry.
  const first = (await deviceOf(hub, deviceId)).lastSeen!;
  const later = await waitFor('lastSeen to move past the first reading', async () => {
    const d: Device = await deviceOf(hub, deviceId);
    return d.lastSeen !== null && Date.parse(d.lastSeen) > Date.parse(first) + 1500 && d;
  }, 20_000, 250);
  t.is(later.status, 'online');

  // Those intervals carried no new load: a total that grew would be a delta counted twice.
  const after = jsonOf<ServiceTelemetry>(t, await cli('telemetry', 'counting', '--since', '1h', '--json'));
  t.deepEqual(after.custom, report.custom, 'the custom figures are unchanged after further telemetry intervals');
  await checkScrape('after further telemetry intervals');

  const unknown = await cli('telemetry', 'no-such-service', '--json');
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no-such-service.*no deployment/);
});
