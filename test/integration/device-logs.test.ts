/**
 * `edgeml logs` end to end with a real hub, a real agent and a real scoring container (the node
 * runtime fixture, linux/amd64): the container's lines with --tail, a line written after a --follow
 * started (a slow scoring request prints one), the session ended on the device when the CLI is
 * killed, the agent's own lines with --agent, and 404 for a service the device does not have;
 * then `service update --ship-logs error`: an error line the runtime logs for a failing request
 * reaches `logs --shipped` through the telemetry, and one logged before shipping was on does not.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { DeviceLogEnd, DeviceLogLine, ShippedLogs } from '../../shared/api/logs.js';
import type { Deployment, DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import { cleanEnv, cliFor, jsonOf } from '../helpers/cli.js';
import { spawnEdgeml, startAgent, startHub, tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deviceOf, enrollDevice } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;

const entries = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as DeviceLogLine | DeviceLogEnd);
const lines = (stdout: string) => entries(stdout).filter((e): e is DeviceLogLine => !('end' in e));

test('logs: tail, follow (ended on the device when the reader goes), the agent, and an unknown service', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const deviceId = `logs-${randomBytes(3).toString('hex')}`;
  t.teardown(async () => {
    const listed = await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`]);
    for (const id of listed.stdout.split('\n').filter(Boolean)) await exec('docker', ['rm', '-f', id]);
    await deleteFromRegistry(registry, `${prefix}/js`, 'v1').catch(() => undefined);
  });

  // The same files as the feedback and runtime tests: the build is a cache hit.
  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  t.is(image.status, 'succeeded');

  const token = await enrollDevice(hub, deviceId, { site: 'logs' });
  const agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token, extraArgs: ['--platform', 'linux/amd64'] });
  const { key } = jsonOf<DeploymentCreated>(t, await cli('deploy', 'scorer', '--build', String(image.id), '--target', 'site=logs', '--json'));
  await waitFor('the service running on the device', async () => {
    const d = await deviceOf(hub, deviceId);
    return d.status === 'online' && d.services.some((s) => s.name === 'scorer' && s.phase === 'running');
  }, LONG, 500);

  // --tail: the container's own lines (the runtime says it started), every one from replica 1.
  const tailed = await waitFor('the container has written something', async () => {
    const r = await cli('logs', 'scorer', '--device', deviceId, '--tail', '20', '--json');
    t.is(r.code, 0, r.stderr);
    return lines(r.stdout).length > 0 ? r.stdout : undefined;
  }, 60_000, 500);
  t.true(lines(tailed).length <= 20);
  t.true(lines(tailed).every((l) => l.source === 'scorer' && l.replica === 1 && (l.stream === 'stdout' || l.stream === 'stderr') && !Number.isNaN(Date.parse(l.ts))));
  t.deepEqual(entries(tailed).at(-1), { end: { reason: 'done' } });
  const text = await cli('logs', 'scorer', '--device', deviceId, '--tail', '1');
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^scorer\[1\] [|!] .+\n$/);

  // --follow sees a line written after it started: a slow scoring request prints one.
  const follower = spawnEdgeml(t, ['logs', 'scorer', '--device', deviceId, '--follow', '--tail', '0'], { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey });
  const started = await agent.waitForLog('the log session on the device', (l) => l.msg === 'log session started' && l.source === 'scorer' && l.follow === true, 30_000);
  const input = join(await tempDir(t), 'input.json');
  await writeFile(input, JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2], fixture: 'slow' }));
  const scored = await cli.withEnv({ EDGEML_SERVICE_KEY: key })('score', 'scorer', '--device', deviceId, '--input', input, '--json');
  t.is(scored.code, 0, scored.stderr);
  await waitFor('the follower printing the new line', () => follower.rawOutput.some((l) => /^scorer\[1\] \| .*fixture: slow run started/.test(l)), 30_000);
  // Killing the reader ends the session on the device.
  await follower.kill('SIGKILL');
  const ended = await agent.waitForLog('the session ended on the device', (l) => l.msg === 'log session ended' && l.session === started.session, 30_000);
  t.is(ended.reason, 'stopped');

  // --agent: the agent's own lines, from its start.
  const own = await cli('logs', '--device', deviceId, '--agent', '--json');
  t.is(own.code, 0, own.stderr);
  const ownLines = lines(own.stdout);
  t.true(ownLines.every((l) => l.source === 'agent' && l.replica === undefined));
  t.true(ownLines.some((l) => l.line.includes('"agent started"')));

  const unknown = await cli('logs', 'nosuch', '--device', deviceId);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /device .* has no service nosuch.*HUB_E_NOT_FOUND/);
  const bad = await cli('logs', 'scorer', '--device', 'no-such-device');
  t.is(bad.code, 1);
  t.regex(bad.stderr, /HUB_E_DEVICE_NOT_FOUND/);

  // --ship-logs error: a failing request's error line (the runtime logs it as JSON, level error)
  // travels with the telemetry; one from before shipping was turned on stays on the device.
  const score = cli.withEnv({ EDGEML_SERVICE_KEY: key });
  const failingInput = join(await tempDir(t), 'throw.json');
  await writeFile(failingInput, JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2], fixture: 'throw' }));
  const failing = async () => t.not((await score('score', 'scorer', '--device', deviceId, '--input', failingInput, '--json')).code, 0);
  await failing();
  const none = jsonOf<ShippedLogs>(t, await cli('logs', 'scorer', '--shipped', '--json'));
  t.deepEqual(none, { service: 'scorer', lines: [], dropped: 0 });
  const turnedOn = new Date().toISOString();
  const updated = jsonOf<Deployment>(t, await cli('service', 'update', 'scorer', '--ship-logs', 'error', '--json'));
  t.is(updated.shipLogs, 'error');
  t.is(updated.revision, jsonOf<Deployment>(t, await cli('service', 'show', 'scorer', '--json')).revision);
  await agent.waitForLog('the agent following the container', (l) => l.msg === 'shipping error lines of a container' && l.service === 'scorer', 60_000);
  await failing();
  const shipped = await waitFor('the error line shipped to the hub', async () => {
    const r = jsonOf<ShippedLogs>(t, await cli('logs', 'scorer', '--shipped', '--since', '10m', '--json'));
    return r.lines.length > 0 ? r : undefined;
  }, 60_000, 500);
  t.is(shipped.service, 'scorer');
  t.true(shipped.lines.every((l) => l.device === deviceId && l.replica === 1 && l.ts >= turnedOn), JSON.stringify(shipped.lines));
  t.true(shipped.lines.some((l) => /fixture: run\(\) was asked to fail/.test(l.line)), JSON.stringify(shipped.lines));
  const human = await cli('logs', 'scorer', '--shipped', '--device', deviceId, '--tail', '1');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, new RegExp(`^\\S+ ${deviceId} scorer\\[1\\] [|!] .+\\n$`));
});
