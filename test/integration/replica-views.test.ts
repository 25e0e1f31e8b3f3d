/**
 * The views of replicas on a real hub process, fed by a real mqtt.js client logged in as an enrolled
 * device that reports a scaled service and sends a metrics batch counting its replicas and scaling
 * decisions: `device show` (JSON and human), GET /api/v1/devices/{id}/services and its OpenAPI
 * entry, /metrics (promtool-checked), and `edgeml telemetry SERVICE`. A second device plays an agent
 * older than replicas: its views stay as they were.
 */
import { execFile } from 'node:child_process';
import SwaggerParser from '@apidevtools/swagger-parser';
import test, { type ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import type { Device } from '../../shared/api/devices.js';
import type { ServiceTelemetry } from '../../shared/api/telemetry.js';
import type { DeviceServices } from '../../shared/api/where.js';
import type { ReportedService, ReportedState } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { onlineStatus } from '../helpers/device-status.js';
import { startHub, type HubProcess } from '../helpers/edgeml-process.js';
import { api, deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { metricsBatch, serviceInterval } from '../helpers/telemetry-batches.js';
import { waitFor } from '../helpers/wait.js';

const CAPACITY = 'capacity: a replica needs 512 MiB, 300 MiB free';
const LAST_SCALE = { at: new Date(Date.now() - 30_000).toISOString(), from: 1, to: 3, reason: 'load 2.4 per replica > 0.7 × maxConcurrent 1 over 5s' };

function iris(extra: Partial<ReportedService> = {}): ReportedService {
  return { name: 'iris', revision: 1, image: `127.0.0.1:5000/iris@sha256:${'1'.repeat(64)}`, phase: 'running', servingRevision: 1, progress: null, error: null, ...extra };
}

/** A device as a bare MQTT client: online, then its report, then one metrics batch; resolves once the hub has the report. */
async function playDevice(t: ExecutionContext, hub: HubProcess, id: string, service: ReportedService, interval: ReturnType<typeof serviceInterval>) {
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: await enrollDevice(hub, id, { site: 'views' }), reconnectPeriod: 0, connectTimeout: 5000 });
  t.teardown(() => client.endAsync(true));
  await client.publishAsync(deviceTopic(id, 'status'), JSON.stringify(onlineStatus(id)), { qos: 1, retain: true });
  const reported: ReportedState = { v: 1, observedGeneration: 1, phase: 'converged', services: [service] };
  await client.publishAsync(deviceTopic(id, 'reported'), JSON.stringify(reported), { qos: 1 });
  await waitFor(`the hub to have ${id}'s report`, async () => (await deviceOf(hub, id)).services.some((s) => s.name === 'iris'), 10_000);
  const to = Date.now() - 60_000;
  // Acknowledged at QoS 1 means stored (hub/telemetry/ingest.ts).
  await client.publishAsync(deviceTopic(id, 'telemetry'), JSON.stringify(metricsBatch({ id: 'm-1', from: new Date(to - 10_000).toISOString(), to: new Date(to).toISOString(), services: { iris: interval } })), { qos: 1 });
}

function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, output: `${stdout}${stderr}` }));
    child.stdin!.end(text);
  });
}

test('device show, the device services route, /metrics and telemetry show the replicas devices report', async (t) => {
  t.timeout(120_000);
  const hub = await startHub(t);
  const cli = cliFor(hub);
  // The hub asks the devices to run iris: /metrics has series only for services it asks for.
  const deployed = await cli('deploy', 'iris', '--image', iris().image, '--target', 'site=views', '--json');
  t.is(deployed.code, 0, deployed.stderr);
  await playDevice(t, hub, 'gw-1', iris({ replicas: { desired: 3, ready: 2, capacity: CAPACITY }, lastScale: LAST_SCALE }), serviceInterval({ requests: 4, responses: { '2xx': 4, '3xx': 0, '4xx': 0, '5xx': 0 }, replicas: 2, scaling: { up: 2, down: 0, held: 1 } }));
  await playDevice(t, hub, 'gw-old', iris(), serviceInterval({ requests: 1, responses: { '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 0 } }));

  // device show --json: the hub's device record, each service with what its device reported.
  const shown = jsonOf<Device>(t, await cli('device', 'show', 'gw-1', '--json'));
  t.like(shown.services[0], { name: 'iris', replicas: { desired: 3, ready: 2, capacity: CAPACITY }, lastScale: LAST_SCALE });
  t.false('replicas' in jsonOf<Device>(t, await cli('device', 'show', 'gw-old', '--json')).services[0]!, 'an older agent: nothing made up');
  const human = await cli('device', 'show', 'gw-1');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, new RegExp(`^  iris: replicas 2/3, ${CAPACITY}$`, 'm'));
  t.regex(human.stdout, /^ {4}last scaled 1 → 3 at .*: load 2\.4 per replica/m);

  // GET /api/v1/devices/{id}/services: read scope, each service with its replicas; in the OpenAPI document.
  const readKey = (await api<{ key: string }>(hub, 'POST', '/api/v1/apikeys', { key: hub.adminKey, json: { name: 'dashboard', scope: 'read' } })).body.key;
  const services = await api<DeviceServices>(hub, 'GET', '/api/v1/devices/gw-1/services', { key: readKey });
  t.is(services.status, 200);
  t.like(services.body.services[0], { name: 'iris', servingRevision: 1, replicas: { desired: 3, ready: 2, capacity: CAPACITY }, lastScale: LAST_SCALE });
  t.is((await api(hub, 'GET', '/api/v1/devices/nope/services', { key: readKey })).status, 404);
  const openapi = (await SwaggerParser.dereference(structuredClone((await api(hub, 'GET', '/openapi.json')).body) as never)) as unknown as { paths: Record<string, { get?: { responses: Record<string, unknown> } }> };
  t.regex(JSON.stringify(openapi.paths['/api/v1/devices/{id}/services']?.get?.responses['200'] ?? null), /"replicas"/);

  // /metrics: the gauges from the reports (none for the older agent), the decisions from the batch.
  const scrape = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${readKey}` } });
  t.is(scrape.status, 200);
  const metrics = await scrape.text();
  const checked = await promtool(metrics);
  t.is(checked.code, 0, checked.output);
  const lines = metrics.split('\n');
  for (const line of [
    '# TYPE edgeml_service_replicas gauge',
    'edgeml_service_replicas{service="iris",device="gw-1",state="desired"} 3',
    'edgeml_service_replicas{service="iris",device="gw-1",state="ready"} 2',
    'edgeml_service_scaling_total{service="iris",decision="up"} 2',
    'edgeml_service_scaling_total{service="iris",decision="held"} 1',
  ]) {
    t.true(lines.includes(line), `${line} in:\n${metrics}`);
  }
  t.false(metrics.includes('device="gw-old"'));

  // telemetry SERVICE: the latest ready count per device and the decisions over the window.
  const report = jsonOf<ServiceTelemetry>(t, await cli('telemetry', 'iris', '--since', '1h', '--json'));
  t.like(report, { service: 'iris', requests: 5, replicas: 2, scaling: { up: 2, down: 0, held: 1 } });
  t.deepEqual(report.devices.map((d) => [d.device, d.replicas, d.scaling]), [
    ['gw-1', 2, { up: 2, down: 0, held: 1 }],
    ['gw-old', null, { up: 0, down: 0, held: 0 }],
  ]);
  t.like((await api<ServiceTelemetry>(hub, 'GET', '/api/v1/telemetry/services/iris?since=1h&device=gw-1', { key: readKey })).body, { replicas: 2 });
  const table = await cli('telemetry', 'iris', '--since', '1h');
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^gw-1 .* 2 +\+2 -0 \(1 held\)$/m);
  t.regex(table.stdout, /^gw-old .* - +-$/m);
});
