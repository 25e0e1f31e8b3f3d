/**
 * Telemetry ingest and queries on a real hub process, fed by real mqtt.js clients logged in as
 * enrolled devices with hand-made batches: exact totals, each batch stored once per device, bad
 * telemetry from one device dropped and counted while the others' is stored, nothing acknowledged
 * lost to a kill -9, a failed write not acknowledged (and stored when sent again), /metrics that
 * promtool accepts, and the CLI's telemetry and capture export.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import mqtt, { type MqttClient } from 'mqtt';
import type { DeviceTelemetry, ServiceSeries, ServiceTelemetry } from '../../shared/api/telemetry.js';
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import type { MetricsBatch, ReportedState } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { api, deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { captureSample, capturesBatch, metricsBatch, serviceInterval } from '../helpers/telemetry-batches.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A device as a bare MQTT client that reports running `iris` (the hub takes figures only about
 * services a device runs) and waits until the hub has that report.
 */
async function device(t: ExecutionContext, hub: HubProcess, id: string, token?: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: token ?? (await enrollDevice(hub, id)), reconnectPeriod: 200, connectTimeout: 5000 });
  t.teardown(() => client.endAsync(true));
  const reported: ReportedState = { v: 1, observedGeneration: 0, phase: 'converged', services: [{ name: 'iris', revision: 1, image: 'img', phase: 'running', servingRevision: 1, progress: null, error: null }] };
  await client.publishAsync(deviceTopic(id, 'reported'), JSON.stringify(reported), { qos: 1 });
  await waitFor(`the hub to have ${id}'s report`, async () => (await deviceOf(hub, id)).services.some((s) => s.name === 'iris'), 10_000);
  return client;
}

const publish = (client: MqttClient, id: string, message: unknown) =>
  client.publishAsync(deviceTopic(id, 'telemetry'), typeof message === 'string' ? message : JSON.stringify(message), { qos: 1 });

/** A metrics batch for `iris` ending `agoMs` before now: `requests` answered in 5-10 ms, `errors` of them 5xx. */
function irisBatch(id: string, requests: number, errors: number, agoMs = 60_000): MetricsBatch {
  const to = Date.now() - agoMs;
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  counts[1] = requests;
  return metricsBatch({
    id,
    from: new Date(to - 10_000).toISOString(),
    to: new Date(to).toISOString(),
    services: { iris: serviceInterval({ requests, responses: { '2xx': requests - errors, '3xx': 0, '4xx': 0, '5xx': errors }, latencyMs: { boundsMs: [...LATENCY_BOUNDS_MS], counts, sumMs: 7 * requests } }) },
  });
}

const report = async (hub: HubProcess, query = '') =>
  (await api<ServiceTelemetry>(hub, 'GET', `/api/v1/telemetry/services/iris?since=1h${query}`, { key: hub.adminKey })).body;

function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, output: `${stdout}${stderr}` }));
    child.stdin!.end(text);
  });
}

test('ingest, queries, /metrics and the CLI against a real hub and real MQTT clients', async (t) => {
  t.timeout(180_000);
  const hub = await startHub(t);
  const a = await device(t, hub, 'gw-a');
  const b = await device(t, hub, 'gw-b');

  // Known totals; a batch sent twice by one device is stored once, the same id from another device is its own.
  await publish(a, 'gw-a', irisBatch('m-1', 10, 1));
  await publish(a, 'gw-a', irisBatch('m-1', 10, 1));
  await publish(a, 'gw-a', irisBatch('m-2', 20, 0));
  await publish(b, 'gw-b', irisBatch('m-1', 5, 0));
  // Malformed from gw-b: not JSON, not the schema, and schema-valid but unusable (foreign histogram bounds).
  await publish(b, 'gw-b', 'not json');
  await publish(b, 'gw-b', { ...irisBatch('m-x', 1, 0), v: 2 });
  const foreign = irisBatch('m-y', 1, 0);
  foreign.services.iris!.latencyMs = { boundsMs: [1, 2], counts: [1, 0, 0], sumMs: 1 };
  await publish(b, 'gw-b', foreign);
  // …while gw-a's keep being stored, and gw-b's next valid batch too.
  await publish(a, 'gw-a', irisBatch('m-3', 30, 2));
  await publish(b, 'gw-b', irisBatch('m-2', 7, 0));
  const now = new Date().toISOString();
  await publish(a, 'gw-a', capturesBatch({ id: 'c-1', samples: [captureSample({ ts: now }), captureSample({ ts: now, status: 500 })] }));

  // Acknowledged means stored: no waiting needed.
  const fleet = await report(hub);
  t.like(fleet, { service: 'iris', requests: 72, errors: 3, rejected: 0 });
  t.is(fleet.p50 !== null && fleet.p50 > 5 && fleet.p50 <= 10, true, `p50 ${fleet.p50} in the 5-10 ms bucket`);
  t.deepEqual(fleet.devices.map((d) => [d.device, d.requests, d.errors]), [['gw-a', 60, 3], ['gw-b', 12, 0]]);
  t.like(await report(hub, '&device=gw-b'), { requests: 12 });

  // The series over the same window: its buckets add up to the report, for the fleet and one device.
  const until = new Date().toISOString();
  const sinceIso = new Date(Date.parse(until) - 3_600_000).toISOString();
  const seriesOf = async (query: string) => {
    const answer = await api<ServiceSeries>(hub, 'GET', `/api/v1/telemetry/services/iris/series?since=${sinceIso}&until=${until}${query}`, { key: hub.adminKey });
    t.is(answer.status, 200);
    return answer.body;
  };
  const sums = (s: ServiceSeries) => [s.points.reduce((n, p) => n + p.requests, 0), s.points.reduce((n, p) => n + p.errors, 0)];
  const series = await seriesOf('');
  t.like(series, { service: 'iris', since: sinceIso, until, stepSeconds: 60 });
  t.is(series.points.length, 60, 'points=60 by default');
  const windowReport = (await api<ServiceTelemetry>(hub, 'GET', `/api/v1/telemetry/services/iris?since=${sinceIso}&until=${until}`, { key: hub.adminKey })).body;
  t.deepEqual(sums(series), [windowReport.requests, windowReport.errors]);
  t.deepEqual(sums(series), [72, 3]);
  t.true(series.points.some((p) => p.p50 !== null && p.p50 > 5 && p.p50 <= 10), 'the busy bucket has its latency');
  t.is(series.points.reduce((n, p) => n + p.queueTimeouts, 0), windowReport.queueTimeouts, 'queue timeouts per bucket too');
  t.true(series.points.every((p) => Array.isArray(p.atLeast) && p.atLeast.every((name) => p[name] !== null)), 'each point says which of its percentiles are lower bounds');
  const seriesB = await seriesOf('&device=gw-b&points=12');
  t.is(seriesB.stepSeconds, 300);
  t.deepEqual(sums(seriesB), [12, 0]);
  const unknown = await api<ServiceSeries>(hub, 'GET', '/api/v1/telemetry/services/wine/series?since=1h&points=3', { key: hub.adminKey });
  t.is(unknown.status, 200, 'as the report: a service nobody sent figures for has none');
  t.deepEqual(unknown.body.points.map((p) => [p.requests, p.p99]), [[0, null], [0, null], [0, null]]);
  for (const bad of ['points=1', 'points=241', 'since=yesterday', `since=${until}&until=${sinceIso}`]) {
    t.is((await api(hub, 'GET', `/api/v1/telemetry/services/iris/series?${bad}`, { key: hub.adminKey })).status, 400, bad);
  }

  const devB = (await api<DeviceTelemetry>(hub, 'GET', '/api/v1/telemetry/devices/gw-b?since=1h', { key: hub.adminKey })).body;
  t.like(devB, { device: 'gw-b', samples: 2, invalidMessages: 3 });
  t.like(devB.latest, { containers: [{ service: 'iris' }], outbox: { dropped: { metrics: 0, capture: 0 } } });
  t.is((await api(hub, 'GET', '/api/v1/telemetry/devices/nope', { key: hub.adminKey })).status, 404);
  t.is((await api(hub, 'GET', '/api/v1/telemetry/services/iris?since=yesterday', { key: hub.adminKey })).status, 400);

  // /metrics: a read key, the 0.0.4 content type, and a document promtool accepts. The same read
  // key (a dashboard's) cannot export captures: those are users' data.
  t.is((await api(hub, 'GET', '/metrics')).status, 401);
  const readKey = (await api<{ key: string }>(hub, 'POST', '/api/v1/apikeys', { key: hub.adminKey, json: { name: 'prometheus', scope: 'read' } })).body.key;
  t.is((await api(hub, 'GET', '/api/v1/captures/iris?since=1h', { key: readKey })).status, 403);
  t.is((await api(hub, 'GET', '/api/v1/telemetry/services/iris?since=99999999999d', { key: readKey })).status, 400);
  const scrape = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${readKey}` } });
  t.is(scrape.status, 200);
  t.regex(scrape.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const metrics = await scrape.text();
  const checked = await promtool(metrics);
  t.is(checked.code, 0, checked.output);
  for (const line of [
    'edgeml_service_requests_total{service="iris"} 72',
    'edgeml_service_responses_total{service="iris",class="5xx"} 3',
    'edgeml_service_latency_seconds_bucket{service="iris",le="0.01"} 72',
    'edgeml_service_latency_seconds_count{service="iris"} 72',
    'edgeml_telemetry_batches_stored_total 6',
    'edgeml_telemetry_batches_duplicate_total 1',
    'edgeml_telemetry_batches_invalid_total 3',
    'edgeml_device_messages_invalid_total{device="gw-b"} 3',
    'edgeml_devices_enrolled 2',
    'edgeml_mqtt_connected_clients 2',
  ]) {
    t.true(metrics.split('\n').includes(line), `${line} in:\n${metrics}`);
  }

  // The CLI: the telemetry view, a device, and a capture export.
  const cli = cliFor(hub);
  const viaCli = jsonOf<ServiceTelemetry>(t, await cli('telemetry', 'iris', '--since', '1h', '--json'));
  t.like(viaCli, { service: 'iris', requests: 72, errors: 3, rejected: 0 });
  const human = await cli('telemetry', 'iris', '--since', '1h');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /fleet: +72 requests/);
  t.regex(human.stdout, /^gw-a +60 /m);
  const seriesViaCli = jsonOf<ServiceSeries>(t, await cli('telemetry', 'iris', '--series', '--points', '6', '--since', '1h', '--json'));
  t.like(seriesViaCli, { service: 'iris', stepSeconds: 600 });
  t.deepEqual(sums(seriesViaCli), [72, 3]);
  const seriesTable = await cli('telemetry', 'iris', '--series', '--points', '6', '--device', 'gw-b');
  t.is(seriesTable.code, 0, seriesTable.stderr);
  t.regex(seriesTable.stdout, /6 buckets of 600 s/);
  t.is(seriesTable.stdout.split('\n').filter((l) => /^\d{4}-\d{2}-\d{2}.* 12 /.test(l)).length, 1, `one bucket with gw-b's 12 requests in:\n${seriesTable.stdout}`);
  t.not((await cli('telemetry', 'iris', '--series', '--points', '1')).code, 0);
  t.like(jsonOf<DeviceTelemetry>(t, await cli('telemetry', 'device', 'gw-a', '--since', '2h', '--json')), { device: 'gw-a', samples: 3 });
  const out = join(await tempDir(t), 'iris.jsonl');
  t.like(jsonOf(t, await cli('capture', 'export', 'iris', '--since', '1h', '--out', out, '--json')), { service: 'iris', samples: 2, out });
  const lines = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(lines.map((l) => [l.device, l.status]).sort(), [['gw-a', 200], ['gw-a', 500]]);
  const toStdout = await cli('capture', 'export', 'iris', '--since', '1h', '--model', 'iris:1', '--out', '-');
  t.is(toStdout.code, 0, toStdout.stderr);
  t.is(toStdout.stdout.trim().split('\n').length, 2);
  t.regex(toStdout.stderr, /exported 2 samples/);
});

test('a batch is acknowledged only once stored: a failed write drops the connection and the resent batch is stored; kill -9 loses nothing acknowledged', async (t) => {
  t.timeout(180_000);
  const hub = await startHub(t);
  const token = await enrollDevice(hub, 'gw-c');
  const c = await device(t, hub, 'gw-c', token);

  // A batch for yesterday, whose day directory cannot be made: the write fails.
  const yesterday = irisBatch('m-fail', 4, 0, 86_400_000);
  const blocker = join(hub.data, 'telemetry', 'metrics', yesterday.to.slice(0, 10));
  await mkdir(join(hub.data, 'telemetry', 'metrics'), { recursive: true });
  await writeFile(blocker, 'in the way');
  let acked = false;
  const sending = publish(c, 'gw-c', yesterday).then(() => (acked = true));
  await hub.waitForLog('the refused publish', (l) => l.msg === 'mqtt publish not accepted: dropping the connection so the device sends it again');
  t.false(acked, 'no PUBACK for a batch that is not stored');
  await rm(blocker);
  // mqtt.js reconnects and sends the unacknowledged publish again.
  await sending;
  t.like((await api<ServiceTelemetry>(hub, 'GET', '/api/v1/telemetry/services/iris?since=2d', { key: hub.adminKey })).body, { requests: 4 });

  // Many batches at once, each acknowledged, then the hub killed at once: all are there after a restart.
  const N = 30;
  await Promise.all(Array.from({ length: N }, (_, i) => publish(c, 'gw-c', irisBatch(`k-${i}`, 1, 0))));
  await hub.kill('SIGKILL');
  const again = await startHub(t, [], { data: hub.data });
  t.like((await api<ServiceTelemetry>(again, 'GET', '/api/v1/telemetry/services/iris?since=2d', { key: again.adminKey })).body, { requests: 4 + N });
  // The device sends them again after the restart (its PUBACKs might have been lost): still counted once.
  const c2 = await device(t, again, 'gw-c', token);
  await Promise.all(Array.from({ length: N }, (_, i) => publish(c2, 'gw-c', irisBatch(`k-${i}`, 1, 0))));
  t.like((await api<ServiceTelemetry>(again, 'GET', '/api/v1/telemetry/services/iris?since=2d', { key: again.adminKey })).body, { requests: 4 + N });
  await waitFor('the duplicates counted', async () => (await fetch(`${again.url}/metrics`, { headers: { authorization: `Bearer ${again.adminKey}` } }).then((r) => r.text())).includes(`edgeml_telemetry_batches_duplicate_total ${N}`));
});
