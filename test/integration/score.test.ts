/**
 * `edgeml score` against a real hub, with devices that are raw mqtt.js clients reporting their
 * status and state, and a stand-in gateway on 127.0.0.1 that records what reaches it: the service
 * key goes only to a device the service targets and that reports it serving, and over plain http
 * only to loopback unless the user passes --allow-insecure-http.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { ReportedState } from '../../shared/protocol.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';
import { onlineStatus } from '../helpers/device-status.js';

const IMAGE = `127.0.0.1:5000/edgeml-test/iris@sha256:${'1'.repeat(64)}`;

const SERVING: ReportedState = {
  v: 1,
  observedGeneration: 1,
  phase: 'converged',
  services: [{ name: 'iris', revision: 1, image: IMAGE, phase: 'running', servingRevision: 1, progress: null, error: null }],
};

/** Answers every request like a scoring gateway and keeps what it was sent. */
async function standInGateway(t: ExecutionContext) {
  const requests: Array<{ url: string | undefined; headers: IncomingHttpHeaders }> = [];
  const server = createServer((req, res) => {
    requests.push({ url: req.url, headers: req.headers });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"class":"setosa"}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, requests };
}

/** An enrolled device that says it is online with `gateway`, and reports `state` when given. */
async function device(t: ExecutionContext, hub: HubProcess, id: string, labels: Record<string, string>, gateway: string, state?: ReportedState): Promise<void> {
  const token = await enrollDevice(hub, id, labels);
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: token, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  const status = onlineStatus(id, { gateway });
  await client.publishAsync(`edgeml/v1/dev/${id}/status`, JSON.stringify(status), { qos: 1 });
  if (state) await client.publishAsync(`edgeml/v1/dev/${id}/reported`, JSON.stringify(state), { qos: 1 });
  await waitFor(`${id} as the hub sees it`, async () => {
    const shown = jsonOf<Device>(t, await cliFor(hub)('device', 'show', id, '--json'));
    return shown.gateway === gateway && shown.observedGeneration === (state?.observedGeneration ?? null);
  });
}

test('score sends the key only to a targeted device that serves the service, over loopback or an allowed plain-http URL', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const gateway = await standInGateway(t);
  const loopback = `http://127.0.0.1:${gateway.port}`;
  const { key } = jsonOf<DeploymentCreated>(t, await cli('deploy', 'iris', '--image', IMAGE, '--target', 'site=lab', '--json'));
  const input = join(await tempDir(t), 'input.json');
  await writeFile(input, '{"features":[[5.1,3.5,1.4,0.2]]}');
  const score = (id: string, ...extra: string[]) => cli.withEnv({ EDGEML_SERVICE_KEY: key })('score', 'iris', '--device', id, '--input', input, ...extra);

  // Outside the selector, though it claims to serve iris.
  await device(t, hub, 'field-1', { site: 'field' }, loopback, SERVING);
  const untargeted = await score('field-1');
  t.is(untargeted.code, 1);
  t.regex(untargeted.stderr, /service iris does not target device field-1 .*\[CLI_E_SERVICE_NOT_ON_DEVICE\]/);

  // Targeted, but it has not reported the service yet.
  await device(t, hub, 'lab-1', { site: 'lab' }, loopback);
  const notYet = await score('lab-1');
  t.is(notYet.code, 1);
  t.regex(notYet.stderr, /device lab-1 does not run service iris yet \(it has not reported iris\).*\[CLI_E_SERVICE_NOT_ON_DEVICE\]/);

  // An IPv4-mapped loopback address: plain http to a host the CLI does not take for loopback,
  // while every byte still stays on this machine.
  await device(t, hub, 'lab-2', { site: 'lab' }, `http://[::ffff:127.0.0.1]:${gateway.port}`, SERVING);
  const insecure = await score('lab-2');
  t.is(insecure.code, 1);
  t.regex(insecure.stderr, /device lab-2 reported a plain-http gateway .*--allow-insecure-http.*\[CLI_E_GATEWAY_REFUSED\]/);
  t.deepEqual(gateway.requests, [], 'no refused score reached a gateway');

  const allowed = await score('lab-2', '--allow-insecure-http', '--json');
  t.deepEqual(jsonOf(t, allowed), { class: 'setosa' });
  t.is(gateway.requests.length, 1);

  await device(t, hub, 'lab-3', { site: 'lab' }, loopback, SERVING);
  t.deepEqual(jsonOf(t, await score('lab-3', '--json')), { class: 'setosa' });
  t.like(gateway.requests[1], { url: '/v1/services/iris/score', headers: { authorization: `Bearer ${key}` } });

  const undeployed = await cli.withEnv({ EDGEML_SERVICE_KEY: key })('score', 'nope', '--device', 'lab-3', '--input', input);
  t.regex(undeployed.stderr, /service nope is not deployed.*\[HUB_E_DEPLOYMENT_NOT_FOUND\]/);
  t.is(gateway.requests.length, 2);
});
