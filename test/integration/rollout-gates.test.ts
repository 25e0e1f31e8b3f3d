/**
 * Model-aware rollout gates with a real hub, two real agents (telemetry every 2 s) and real
 * Docker. One scoring image, pushed again with other settings: the deployed one answers in about
 * 50 ms; a candidate like it passes the gates; one 10× slower is stopped by --gate-p95 after the
 * canary's soak and rolled back, the reason naming p95, the threshold, its value and the old
 * revision's; one that answers 500 for 30 % of inputs is stopped by --gate-error-rate. Clients
 * score on both devices throughout, so the canary has requests and the old revision a p95.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import type { Deployment, DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import type { Rollout } from '../../shared/api/rollouts.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { enrollDevice, servingRevision } from '../helpers/hub-api.js';
import { pushVariant } from '../helpers/registry-variants.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const HEALTH_TIMEOUT = '2m';

/** Answers after GATE_DELAY_MS (default 50); with GATE_FAIL_PERCENT=N, throws (a 500) for inputs whose first feature is below N/10. */
const SCORE_JS = `
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export async function init() {}
export async function run(input) {
  await sleep(Number(process.env.GATE_DELAY_MS || 50));
  if (input.features[0] < Number(process.env.GATE_FAIL_PERCENT || 0) / 10) throw new Error('gate test: this candidate fails here');
  return { class: 'setosa', scores: { setosa: 1, versicolor: 0, virginica: 0 } };
}
`;

async function containerIds(deviceId: string): Promise<string[]> {
  return (await exec('docker', ['ps', '-aq', '--no-trunc', '--filter', `label=io.edgeml.device=${deviceId}`])).stdout.split('\n').filter(Boolean);
}

/** Clients scoring on each gateway until stopped; a failed request is data for the gates, not a test failure. */
function traffic(gateways: readonly string[], key: string) {
  let stopped = false;
  let sent = 0;
  const client = async (gateway: string) => {
    for (let i = 0; !stopped; i++) {
      try {
        const res = await request(`${gateway}/v1/services/scorer/score`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ features: [i % 10, 3.5, 1.4, 0.2] }),
        });
        await res.body.dump();
        sent += 1;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  // One client a device: enough requests for the gates, little load on a machine that runs other tests too.
  const running = Promise.all(gateways.map(client));
  return {
    sent: () => sent,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

/**
 * A canary of one device; a 10 s soak and 40 requests at least, so that the first answers of a
 * fresh container (slower) are not what the p95 is made of, and the old revision has a p95 too.
 */
async function update(t: ExecutionContext, cli: ReturnType<typeof cliFor>, image: string, gates: string[]): Promise<Rollout> {
  const updated = jsonOf<Deployment>(t, await cli('service', 'update', 'scorer', '--image', image, '--strategy', 'canary', '--canary', '1', '--soak', '10s', '--gate-min-requests', '40', ...gates, '--json'));
  const watched = await cli('rollout', 'status', String(updated.rollout.id), '--watch', '--json');
  return JSON.parse(watched.stdout) as Rollout;
}

test('gates: a like candidate passes; 10× slower is stopped by --gate-p95 and 30% 500s by --gate-error-rate, each rolled back', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const suffix = randomBytes(3).toString('hex');
  const ids = [`gate1-${suffix}`, `gate2-${suffix}`];
  t.teardown(async () => {
    for (const id of ids) for (const c of await containerIds(id)) await exec('docker', ['rm', '-f', c]);
    await deleteFromRegistry(registry, `${prefix}/gated`, 'v1').catch(() => undefined);
  });

  const app = await tempDir(t, 'edgeml-gates-');
  await writeFile(join(app, 'score.js'), SCORE_JS);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'gate-test', private: true, type: 'module' }));
  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'gated', '--runtime', 'node', '--score', join(app, 'score.js'), '--deps', join(app, 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const base = jsonOf<Image>(t, await cli('image', 'build', 'gated', '--platform', 'linux/amd64', '--json'));
  t.is(base.status, 'succeeded');
  const repo = `${registry}/${prefix}/gated`;
  const variant = async (env: string) => `${repo}@${(await pushVariant(registry, base.ref!, 'linux/amd64', { env: [env] })).digest}`;
  const alike = await variant('GATE_DELAY_MS=50');
  // Every answer takes 500 ms at least, the lower bound of a latency bucket: its p95 is above the gate's whatever the load.
  const slow = await variant('GATE_DELAY_MS=500');
  const failing = await variant('GATE_FAIL_PERCENT=30');

  const tokens = await Promise.all(ids.map((id) => enrollDevice(hub, id, { fleet: suffix })));
  // Together: an agent already sending telemetry every second slows the start of the next one on a busy machine.
  await Promise.all(ids.map((id, i) => startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId: id, token: tokens[i]!, extraArgs: ['--platform', 'linux/amd64', '--health-timeout', HEALTH_TIMEOUT, '--telemetry-interval', '2s'] })));
  const created = jsonOf<DeploymentCreated>(t, await cli('deploy', 'scorer', '--build', String(base.id), '--target', `fleet=${suffix}`, '--json'));
  t.is(jsonOf<Rollout>(t, await cli('rollout', 'status', String(created.rollout.id), '--watch', '--json')).phase, 'succeeded');
  const gateways = await Promise.all(ids.map(async (id) => (await servingRevision(hub, id, 1, LONG)).gateway!));
  const load = traffic(gateways, created.key);
  t.teardown(() => load.stop());

  // 1. Like the deployed image: every gate holds, the rollout goes on to the second device.
  const passed = await update(t, cli, alike, ['--gate-error-rate', '10%', '--gate-p95-ratio', '4']);
  t.is(passed.phase, 'succeeded', passed.reason ?? '');
  t.deepEqual(passed.gates!.map((g) => [g.name, g.ok, g.batch]), [['error-rate', true, 1], ['p95-ratio', true, 1]], 'the last batch was gated too');
  // Figures are the batch's own: the second device's requests after it was healthy, not the canary's history.
  const second = passed.devices.find((d) => d.batch === 1)!;
  t.true(passed.gates!.every((g) => g.requests >= 40 && Date.parse(g.checkedAt) >= Date.parse(second.doneAt!)), JSON.stringify(passed.gates));

  // 2. Ten times slower: the canary's p95 breaks the gate after its soak; it is rolled back.
  const slowed = await update(t, cli, slow, ['--gate-p95', '400ms']);
  t.is(slowed.phase, 'aborted');
  const reason = /^gate p95 failed after batch 1: p95 (\d+)ms > 400ms \(old revision (\d+)ms\)$/.exec(slowed.reason ?? '');
  t.truthy(reason, slowed.reason ?? '(no reason)');
  t.true(Number(reason![1]) >= 500 && Number(reason![2]) < Number(reason![1]), slowed.reason!); // the old revision is faster: not an absolute figure, which a loaded machine moves
  t.like(slowed.gates?.[0], { name: 'p95', threshold: '400ms', ok: false, batch: 0 });
  t.is(slowed.devices.filter((d) => d.movedAt !== null).map((d) => d.id).join(), ids[0]!, 'only the canary moved');
  const shown = await cli('rollout', 'status', String(slowed.id));
  t.regex(shown.stdout, /GATE\s+THRESHOLD\s+VALUE\s+OLD REVISION/);
  t.regex(shown.stdout, /p95\s+400ms\s+\d+ms\s+\d+ms \(\d+ requests\)\s+\d+\s+failed/);
  const rollback = jsonOf<Rollout>(t, await cli('rollout', 'status', String(slowed.rolledBackBy), '--watch', '--json'));
  t.like(rollback, { kind: 'rollback', phase: 'succeeded', rollbackOf: slowed.id });
  const stable = jsonOf<Deployment>(t, await cli('service', 'show', 'scorer', '--json')).stableRevision!;
  await servingRevision(hub, ids[0]!, stable, LONG);

  // 3. A 500 for 30 % of inputs: the error-rate gate stops it.
  const erring = await update(t, cli, failing, ['--gate-error-rate', '5%']);
  t.is(erring.phase, 'aborted');
  const rate = /^gate error-rate failed after batch 1: error rate (\d+\.\d)% > 5% \((\d+) requests\)$/.exec(erring.reason ?? '');
  t.truthy(rate, erring.reason ?? '(no reason)');
  t.true(Number(rate![1]) >= 15 && Number(rate![1]) <= 50, erring.reason!);
  t.like(jsonOf<Rollout>(t, await cli('rollout', 'status', String(erring.rolledBackBy), '--watch', '--json')), { kind: 'rollback', phase: 'succeeded' });
  t.true(load.sent() > 0);
});
