/**
 * Datasets on a real hub process: feedback batches from real MQTT clients logged in as enrolled
 * devices, joined with their captured requests in the labelled export (REST and `edgeml dataset
 * export`), stored once per batch id and only for the device's own services; base datasets
 * registered, listed, shown and read back, and a bad JSONL refused naming its line with nothing stored.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import mqtt, { type MqttClient } from 'mqtt';
import type { DatasetList, DatasetVersion, DatasetVersionList, LabelledExportLine } from '../../shared/api/datasets.js';
import type { FeedbackBatch, FeedbackItem, ReportedState } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { api, blobFiles, deviceOf, download, enrollDevice } from '../helpers/hub-api.js';
import { captureSample, capturesBatch } from '../helpers/telemetry-batches.js';
import { waitFor } from '../helpers/wait.js';

/** A device as a bare MQTT client that reports running `iris` (the hub keeps feedback only for services a device runs). */
async function device(t: ExecutionContext, hub: HubProcess, id: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: await enrollDevice(hub, id), reconnectPeriod: 200, connectTimeout: 5000 });
  t.teardown(() => client.endAsync(true));
  const reported: ReportedState = { v: 1, observedGeneration: 0, phase: 'converged', services: [{ name: 'iris', revision: 1, image: 'img', phase: 'running', servingRevision: 1, progress: null, error: null }] };
  await client.publishAsync(deviceTopic(id, 'reported'), JSON.stringify(reported), { qos: 1 });
  await waitFor(`the hub to have ${id}'s report`, async () => (await deviceOf(hub, id)).services.some((s) => s.name === 'iris'), 10_000);
  return client;
}

const publish = (client: MqttClient, id: string, message: unknown) => client.publishAsync(deviceTopic(id, 'telemetry'), JSON.stringify(message), { qos: 1 });

const item = (requestId: string, label: unknown, overrides: Partial<FeedbackItem> = {}): FeedbackItem => ({
  ts: new Date().toISOString(),
  requestId,
  service: 'iris',
  revision: 1,
  models: [{ name: 'iris', version: 1 }],
  label,
  ...overrides,
});

const feedback = (id: string, items: FeedbackItem[]): FeedbackBatch => ({ v: 1, kind: 'feedback', id, items });

const lines = <T>(text: string): T[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);

async function exported(hub: HubProcess, query: string): Promise<LabelledExportLine[]> {
  const answer = await download(hub, `/api/v1/datasets/export/iris${query}`, hub.adminKey);
  if (answer.status !== 200) throw new Error(`export answered ${answer.status}: ${answer.bytes.toString()}`);
  return lines<LabelledExportLine>(answer.bytes.toString('utf8'));
}

const byId = (rows: LabelledExportLine[]) => [...rows].sort((a, b) => `${a.device}/${a.requestId}`.localeCompare(`${b.device}/${b.requestId}`));

test('feedback joins captured requests in the labelled export (REST and CLI); base datasets are registered, read back, and a bad file refused naming its line', async (t) => {
  t.timeout(180_000);
  const hub = await startHub(t);
  const a = await device(t, hub, 'gw-a');
  const b = await device(t, hub, 'gw-b');
  const now = new Date().toISOString();

  await publish(a, 'gw-a', capturesBatch({ id: 'c-1', samples: [captureSample({ ts: now, requestId: 'r-1' }), captureSample({ ts: now, requestId: 'r-2', request: { json: { x: [5, 6] }, bytes: 12, truncated: false } })] }));
  await publish(b, 'gw-b', capturesBatch({ id: 'c-1', samples: [captureSample({ ts: now, requestId: 'r-1' })] }));
  const labels = feedback('f-1', [item('r-1', 'old', { ts: new Date(Date.now() - 1000).toISOString() }), item('r-1', 'setosa'), item('g-1', 'virginica', { input: { x: [7, 8] } }), item('o-1', 'x', { service: 'other', input: { x: [0] } })]);
  await publish(a, 'gw-a', labels);
  // Sent again (an agent that did not see the acknowledgement): stored once.
  await publish(a, 'gw-a', labels);
  // gw-b labels its own r-2, which it never captured: it joins nothing of gw-a's r-2.
  await publish(b, 'gw-b', feedback('f-1', [item('r-2', 'not-for-gw-a')]));

  const expected: LabelledExportLine[] = [
    { requestId: 'g-1', time: labels.items[2]!.ts, device: 'gw-a', model: 'iris:1', input: { x: [7, 8] }, output: null, label: 'virginica' },
    { requestId: 'r-1', time: now, device: 'gw-a', model: 'iris:1', input: { x: [1, 2] }, output: { y: 1 }, label: 'setosa' },
  ];
  await waitFor('the labelled rows in the export', async () => (await exported(hub, '?labelled=true')).length === 2, 20_000);
  t.deepEqual(byId(await exported(hub, '?labelled=true')), expected);
  const all = byId(await exported(hub, '?since=1h'));
  t.deepEqual(all.map((r) => [r.device, r.requestId, r.label]), [['gw-a', 'g-1', 'virginica'], ['gw-a', 'r-1', 'setosa'], ['gw-a', 'r-2', null], ['gw-b', 'r-1', null]]);
  t.deepEqual(await exported(hub, '?labelled=true&model=iris:2'), []);
  t.is((await exported(hub, '?labelled=true&model=iris')).length, 2);
  // Users' inputs and labels: a read key (a dashboard's) cannot export them; a bad bound is a 400.
  const readKey = (await api<{ key: string }>(hub, 'POST', '/api/v1/apikeys', { key: hub.adminKey, json: { name: 'dashboard', scope: 'read' } })).body.key;
  t.is((await download(hub, '/api/v1/datasets/export/iris', readKey)).status, 403);
  t.is((await download(hub, '/api/v1/datasets/export/iris?since=99999999999d', hub.adminKey)).status, 400);

  // The CLI export: a JSONL file with the rows, the count in the --json summary.
  const cli = cliFor(hub);
  const dir = await tempDir(t, 'edgeml-datasets-');
  const out = join(dir, 'iris.jsonl');
  t.like(jsonOf(t, await cli('dataset', 'export', 'iris', '--labelled', '--since', '1h', '--out', out, '--json')), { service: 'iris', rows: 2, out });
  t.deepEqual(byId(lines<LabelledExportLine>(await readFile(out, 'utf8'))), expected);
  const toStdout = await cli('dataset', 'export', 'iris', '--out', '-');
  t.is(toStdout.code, 0, toStdout.stderr);
  t.is(lines(toStdout.stdout).length, 4);
  t.regex(toStdout.stderr, /exported 4 rows/);

  // A base dataset: registered as iris-base:1, listed, shown, and its rows read back as uploaded.
  const good = join(dir, 'base.jsonl');
  const text = '{"input":{"x":[1,2]},"label":"setosa"}\n{"input":{"x":[3,4]},"label":"versicolor"}\n';
  await writeFile(good, text);
  const v1 = jsonOf<DatasetVersion>(t, await cli('dataset', 'register', 'iris-base', good, '--description', 'hand-labelled', '--json'));
  t.like(v1, { name: 'iris-base', version: 1, rows: 2, size: Buffer.byteLength(text), description: 'hand-labelled' });
  t.like(jsonOf<DatasetVersion>(t, await cli('dataset', 'show', 'iris-base:1', '--json')), { digest: v1.digest, rows: 2 });
  t.like(jsonOf<DatasetList>(t, await cli('dataset', 'list', '--json')), { datasets: [{ name: 'iris-base', versions: 1, latest: { version: 1 } }] });
  t.regex((await cli('dataset', 'show', 'iris-base')).stdout, /iris-base:1[\s\S]*Rows:\s+2/);
  const rows = await download(hub, '/api/v1/datasets/iris-base/versions/latest/rows', hub.adminKey);
  t.is(rows.status, 200);
  t.is(rows.bytes.toString('utf8'), text);

  // A bad line: refused naming it, nothing stored (no version, no blob).
  const before = await blobFiles(hub.data);
  const bad = join(dir, 'bad.jsonl');
  await writeFile(bad, '{"input":{"x":[1]},"label":1}\n{"input":{"x":[2]}}\n');
  const refused = await cli('dataset', 'register', 'iris-base', bad);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /line 2: has no "label"/);
  t.deepEqual(jsonOf<DatasetVersionList>(t, await cli('dataset', 'list', 'iris-base', '--json')).versions.map((v) => v.version), [1]);
  t.deepEqual(await blobFiles(hub.data), before);
  t.is((await api(hub, 'GET', '/api/v1/datasets/iris-base/versions/2', { key: hub.adminKey })).status, 404);
  t.is((await cli('dataset', 'show', 'nope')).code === 0, false);
});
