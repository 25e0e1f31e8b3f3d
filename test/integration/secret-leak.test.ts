/**
 * Nothing secret in clear, across a real run: a hub serving HTTPS, a real agent running a real
 * scoring container behind its HTTPS gateway, and the CLI (trusting the hub's CA) enrolling,
 * deploying, scoring and rotating every kind of secret (device token, service key, API key). Every secret the run made must be absent from the hub's and agent's
 * output, the CLI's output (but for the one answer that shows it), `ps` snapshots taken while hub
 * and agent run, `docker inspect` of the device's containers, the hub's data files (hub.json keeps
 * hashes; admin.key alone holds the admin key) and the agent's data directory.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import { cleanEnv, jsonOf, runCli, type CliResult } from '../helpers/cli.js';
import { inspectDeviceContainers } from '../helpers/docker.js';
import { snapshotProcesses, startAgent, startHub, tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { servingRevision } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { artefactsDir, fingerprint } from '../helpers/secret-ledger.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;

/** Every regular file under `dir`, with its contents. */
async function filesUnder(dir: string): Promise<Array<{ path: string; text: string }>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  return Promise.all(files.map(async (path) => ({ path, text: await readFile(path, 'latin1') })));
}

test('no secret of a run is in a log, a process list, a container or a data file', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const deviceId = `leak-${randomBytes(3).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry, '--tls', 'auto'], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  t.regex(hub.url, /^https:/);
  t.teardown(async () => {
    const listed = await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`]);
    for (const id of listed.stdout.split('\n').filter(Boolean)) await exec('docker', ['rm', '-f', id]);
    await deleteFromRegistry(registry, `${prefix}/py`, 'v1').catch(() => undefined);
  });

  // Every CLI run, and which of them is the one answer that shows a secret.
  const runs: Array<{ result: CliResult; shows: boolean }> = [];
  const env = (extra: Record<string, string> = {}) => ({ ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_CA: hub.caFile, EDGEML_API_KEY: hub.adminKey, ...extra });
  const cli = async (args: string[], opts: { env?: NodeJS.ProcessEnv; shows?: boolean } = {}) => {
    const result = await runCli(args, opts.env ?? env(), LONG);
    runs.push({ result, shows: opts.shows === true });
    return result;
  };
  const answer = async <T>(...args: string[]) => jsonOf<T>(t, await cli([...args, '--json'], { shows: true }));

  jsonOf(t, await cli(['model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json']));
  jsonOf(t, await cli(['manifest', 'create', 'py', '--model', 'iris-linear:1', '--runtime', 'python', '--score', join(FIXTURES, 'python', 'linear', 'score.py'), '--schema', join(FIXTURES, 'schema.json'), '--json']));
  const image = jsonOf<Image>(t, await cli(['image', 'build', 'py', '--platform', 'linux/amd64', '--json']));
  t.is(image.status, 'succeeded');

  const { token } = await answer<{ token: string }>('device', 'enroll', deviceId, '--label', 'site=leak');
  const agentData = await tempDir(t, 'edgeml-agent-');
  const agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token, data: agentData, extraArgs: ['--platform', 'linux/amd64', '--gateway-tls', 'auto'] });
  const { key } = await answer<DeploymentCreated>('deploy', 'scorer', '--build', String(image.id), '--target', 'site=leak');
  const serving = await servingRevision(hub, deviceId, 1, LONG);
  t.regex(serving.gateway ?? '', /^https:\/\/127\.0\.0\.1:\d+$/, 'the service key only crosses HTTPS');

  // Scoring with the key in the environment, never on the command line.
  const input = join(await tempDir(t), 'input.json');
  const { sample } = JSON.parse(await readFile(join(FIXTURES, 'schema.json'), 'utf8')) as { sample: unknown };
  await writeFile(input, JSON.stringify(sample));
  const score = (serviceKey: string) => cli(['score', 'scorer', '--device', deviceId, '--input', input, '--json'], { env: env({ EDGEML_SERVICE_KEY: serviceKey }) });
  t.like(jsonOf<{ class: string }>(t, await score(key)), { class: 'setosa' });

  const running = async () => (await inspectDeviceContainers(deviceId)).map((c) => `${c.Id} started ${c.State.StartedAt}`).sort();
  const before = await running();
  const { key: newKey } = await answer<{ key: string }>('service', 'rotate-key', 'scorer', '--grace', '10m');
  // The device learns the new key's hash without a restart: the same containers, started when they were.
  await waitFor('the rotated service key to score', async () => (await score(newKey)).code === 0, 60_000, 500);
  t.deepEqual(await running(), before, 'no container was replaced or restarted for the new key');
  t.is((await score(key)).code, 0, 'the old key still scores during its grace');
  const { token: newToken } = await answer<{ token: string }>('device', 'rotate-token', deviceId, '--grace', '10m');
  const apiKey = await answer<{ id: string; key: string }>('apikey', 'create', '--name', 'leak-test', '--scope', 'read');
  const { key: newApiKey } = await answer<{ key: string }>('apikey', 'rotate', apiKey.id, '--grace', '10m');
  // The rotated API key, from a file.
  const keyFile = join(await tempDir(t), 'api-key');
  await writeFile(keyFile, `${newApiKey}\n`, { mode: 0o600 });
  const listed = await cli(['device', 'list', '--json'], { env: { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_CA: hub.caFile, EDGEML_API_KEY_FILE: keyFile } });
  t.is(listed.code, 0, listed.stderr);

  // While hub and agent run: their argument lists, and the container as the agent made it.
  await snapshotProcesses('secret-leak');
  const containers = await inspectDeviceContainers(deviceId);
  t.true(containers.length >= 1, 'the service runs in a container');
  t.true(agent.running && hub.running);

  const secrets = { adminKey: hub.adminKey, token, newToken, key, newKey, apiKey: apiKey.key, newApiKey };
  const ps = (await readdir(artefactsDir())).filter((n) => n.startsWith(`ps-${process.pid}-`));
  t.true(ps.length >= 3, 'ps snapshots: hub ready, agent connected, now');
  const places: Array<{ where: string; text: string; allowed?: string }> = [
    { where: 'hub output', text: await readFile(hub.logFile, 'utf8') },
    { where: 'agent output', text: await readFile(agent.logFile, 'utf8') },
    ...runs.map(({ result, shows }, i) => ({ where: `CLI run ${i}${shows ? ' (stderr)' : ''}`, text: shows ? result.stderr : result.stdout + result.stderr })),
    ...(await Promise.all(ps.map(async (name) => ({ where: name, text: await readFile(join(artefactsDir(), name), 'utf8') })))),
    ...containers.map((c) => ({ where: `docker inspect ${c.Id.slice(0, 12)} (Env, Cmd, Entrypoint, Args, Labels)`, text: JSON.stringify([c.Config.Env, c.Config.Cmd, c.Config.Entrypoint, c.Args, c.Config.Labels]) })),
    ...containers.map((c) => ({ where: `docker inspect ${c.Id.slice(0, 12)}`, text: JSON.stringify(c) })),
    ...(await filesUnder(hub.data)).map((f) => ({ where: `hub DATA/${relative(hub.data, f.path)}`, text: f.text, ...(relative(hub.data, f.path) === 'admin.key' ? { allowed: hub.adminKey } : {}) })),
    ...(await filesUnder(agentData)).map((f) => ({ where: `agent DATA/${relative(agentData, f.path)}`, text: f.text })),
  ];
  t.true(places.some((p) => p.where === 'hub DATA/hub.json'), 'the hub store was read');
  t.true((await readFile(join(hub.data, 'admin.key'), 'utf8')).includes(hub.adminKey));

  const leaks = places.flatMap(({ where, text, allowed }) =>
    Object.entries(secrets)
      .filter(([, secret]) => secret !== allowed && text.includes(secret))
      .map(([name, secret]) => `${name} ${fingerprint(secret)} in ${where}`),
  );
  t.deepEqual(leaks, []);
  // Private keys belong in DATA (the hub's CA, the agent's gateway and client keys), nowhere else.
  const keysShown = places.filter(({ where, text }) => !/^(hub|agent) DATA\//.test(where) && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)).map((p) => p.where);
  t.deepEqual(keysShown, []);
  // The scan is not vacuous: each secret is where it was meant to be shown.
  for (const [name, secret] of Object.entries(secrets)) {
    if (name === 'adminKey') continue;
    t.true(runs.some((r) => r.shows && r.result.stdout.includes(secret)), `${name} was shown once`);
  }
});
