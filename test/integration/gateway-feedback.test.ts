/**
 * Feedback (ground truth) at a device's gateway, end to end with a real hub, a real agent and real
 * scoring containers (node fixture app, linux/amd64): labels by request id and inline examples are
 * accepted (202); an unknown request id is 404, another service's request 409, an invalid inline
 * input 400 naming the field. Labels then reach the hub's archive exactly once: after the agent is
 * killed (-9) right after a 202 while the hub is frozen (so the label was still waiting), and when
 * the hub is down while labels are sent (and the agent is killed too before the hub comes back).
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir, type EdgemlProcess, type HubProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const SAMPLE = { features: [5.1, 3.5, 1.4, 0.2] };

/** The FeedbackItems stored in a hub's archive (DATA/telemetry/feedback/DAY/SERVICE/DEVICE.jsonl), compacted files included. */
async function archivedLabels(hubData: string): Promise<Array<{ requestId: string; label: unknown; input?: unknown; revision: number }>> {
  const out: Array<{ requestId: string; label: unknown; input?: unknown; revision: number }> = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/\.jsonl(\.gz)?$/.test(entry.name)) {
        const raw = await readFile(path);
        const text = entry.name.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
        for (const line of text.split('\n')) if (line.trim()) out.push((JSON.parse(line) as { data: (typeof out)[number] }).data);
      }
    }
  };
  await walk(join(hubData, 'telemetry', 'feedback'));
  return out;
}

/** Batches the agent still holds for the hub in its feedback lane. */
async function waitingLabels(agentData: string): Promise<number> {
  return (await readdir(join(agentData, 'telemetry', 'outbox', 'feedback')).catch(() => [] as string[])).filter((n) => n.endsWith('.batch')).length;
}

test('labels by request id and inline are accepted, refusals say why, and every accepted label reaches the hub once through a kill -9 and a hub outage', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const env = { EDGEML_HUB_IMAGE_PREFIX: prefix };
  let hub: HubProcess = await startHub(t, ['--registry', registry], { env });
  const cli = () => cliFor(hub, hub.adminKey, LONG);
  const deviceId = `fb-${randomBytes(3).toString('hex')}`;
  t.teardown(async () => {
    const listed = await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`]);
    for (const id of listed.stdout.split('\n').filter(Boolean)) await exec('docker', ['rm', '-f', id]);
    await deleteFromRegistry(registry, `${prefix}/js`, 'v1').catch(() => undefined);
  });

  jsonOf(t, await cli()('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli()('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli()('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  t.is(image.status, 'succeeded');

  const token = await enrollDevice(hub, deviceId, { site: 'fb' });
  const data = await tempDir(t, 'edgeml-agent-');
  const agentArgs = ['--platform', 'linux/amd64'];
  let agent: EdgemlProcess = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token, data, extraArgs: agentArgs });
  const scorer = jsonOf<DeploymentCreated>(t, await cli()('deploy', 'scorer', '--build', String(image.id), '--target', 'site=fb', '--capture-rate', '1', '--json'));
  const other = jsonOf<DeploymentCreated>(t, await cli()('deploy', 'other', '--build', String(image.id), '--target', 'site=fb', '--capture-rate', '1', '--json'));
  const ready = await waitFor('both services running on the device', async () => {
    const d = await deviceOf(hub, deviceId);
    return d.status === 'online' && d.gateway && d.services.length === 2 && d.services.every((s) => s.phase === 'running') ? d : undefined;
  }, LONG, 500);
  const gateway = ready.gateway!;
  // A restarted agent binds the gateway where the first one did: clients keep its URL.
  const restartArgs = [...agentArgs, '--gateway', new URL(gateway).host];

  const score = async (service: string, key: string): Promise<string> => {
    const res = await request(`${gateway}/v1/services/${service}/score`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(SAMPLE) });
    t.is(res.statusCode, 200, await res.body.text());
    return String(res.headers['x-request-id']);
  };
  const label = async (body: unknown) => {
    const res = await request(`${gateway}/v1/services/scorer/feedback`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${scorer.key}` }, body: JSON.stringify(body) });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
  };
  const accepted = async (body: unknown): Promise<string> => {
    const res = await label(body);
    t.is(res.status, 202, JSON.stringify(res.body));
    t.true(res.body.accepted);
    return String(res.body.requestId);
  };
  /** Waits until the agent holds no label for the hub, then each marked label must be in the archive exactly once. */
  const deliveredOnce = async (labels: string[]) => {
    await waitFor('the feedback lane drained', async () => (await waitingLabels(data)) === 0, 120_000, 200);
    const stored = await archivedLabels(hub.data);
    for (const l of labels) t.is(stored.filter((s) => s.label === l).length, 1, `label ${l} stored exactly once`);
  };

  // 1. A label for a captured request, and an inline example.
  const scored = await score('scorer', scorer.key);
  t.is(await accepted({ requestId: scored, label: 'by-id' }), scored);
  const inlineId = await accepted({ input: { features: [6.3, 2.9, 5.6, 1.8] }, label: 'inline' });
  t.not(inlineId, scored);

  // 2. Refusals.
  const unknown = await label({ requestId: 'never-scored-here', label: 'x' });
  t.is(unknown.status, 404);
  t.is(unknown.body.error.code, 'GATEWAY_E_REQUEST_UNKNOWN');
  const theirs = await score('other', other.key);
  const foreign = await label({ requestId: theirs, label: 'x' });
  t.is(foreign.status, 409);
  t.is(foreign.body.error.code, 'GATEWAY_E_REQUEST_OTHER_SERVICE');
  const invalid = await label({ input: { features: [1, 2, 'three', 4] }, label: 'x' });
  t.is(invalid.status, 400);
  t.is(invalid.body.error.code, 'GATEWAY_E_FEEDBACK_INVALID');
  t.regex(invalid.body.error.message, /^input\.features\.2: must be number/);

  await deliveredOnce(['by-id', 'inline']);
  const stored = await archivedLabels(hub.data);
  t.like(stored.find((s) => s.label === 'by-id'), { requestId: scored, revision: 1 });
  t.like(stored.find((s) => s.label === 'inline'), { requestId: inlineId, input: { features: [6.3, 2.9, 5.6, 1.8] } });
  t.false(stored.some((s) => s.label === 'x'), 'nothing refused reached the hub');

  // 3. kill -9 right after a 202: the label was on disk, so the restarted agent delivers it. The hub
  // is frozen (SIGSTOP) meanwhile, so the label cannot have been acknowledged before the kill; what it
  // may have read before it froze it stores after it thaws, and the restarted agent's copy is deduped.
  const again = await score('scorer', scorer.key);
  hub.child.kill('SIGSTOP');
  try {
    await accepted({ requestId: again, label: 'before-kill' });
    t.is(await waitingLabels(data), 1, 'the label waits in the outbox when the agent is killed');
    await agent.kill('SIGKILL');
  } finally {
    hub.child.kill('SIGCONT');
  }
  agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token, data, extraArgs: restartArgs });
  await deliveredOnce(['before-kill']);
  // The index of captured requests survived the kill too.
  t.is((await label({ requestId: again, label: 'after-restart' })).status, 202);
  await deliveredOnce(['after-restart']);

  // 4. The hub down while labels are sent (and the agent killed before it is back): each arrives once.
  await hub.kill('SIGKILL');
  const outage = ['outage-1', 'outage-2', 'outage-3'];
  for (const l of outage) await accepted({ requestId: again, label: l });
  t.true((await waitingLabels(data)) >= 1, 'held by the agent while the hub is away');
  await agent.kill('SIGKILL');
  hub = await startHub(t, ['--registry', registry, '--http', hub.http, '--mqtt', hub.mqtt], { data: hub.data, env });
  agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token, data, extraArgs: restartArgs });
  await deliveredOnce([...outage, 'by-id', 'inline', 'before-kill', 'after-restart']);
  await agent.kill('SIGTERM');
});
