/**
 * The hub killed (SIGKILL) at seeded random points of a deploy, ten times, and restarted on the same
 * data each time: it always starts; the client retries with the same Idempotency-Key until it gets
 * an answer, and that answer carries the service key whose hash the devices are told. At the end,
 * after one more kill, every created service is in the device's desired state with its creator's key.
 * (Deployments of a digest-pinned image are stored without Docker.)
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import test from 'ava';
import mqtt from 'mqtt';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import { decodeMessage, type DesiredState } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { fuzzBudget, Random } from '../helpers/fuzz/random.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const ROUNDS = 10;
const MAX_KILL_DELAY_MS = 300;
const sha256hex = (text: string) => createHash('sha256').update(text).digest('hex');

interface Answer {
  status: number;
  replayed: boolean;
  body: DeploymentCreated & { error?: { code: string; message: string } };
}

async function deploy(hub: Pick<HubProcess, 'url' | 'adminKey'>, body: unknown, idempotencyKey: string): Promise<Answer> {
  const res = await request(`${hub.url}/api/v1/deployments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hub.adminKey}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, replayed: res.headers['idempotent-replayed'] === 'true', body: (await res.body.json()) as Answer['body'] };
}

/** The retained desired state the broker holds for `id`, read as the device would. */
async function desiredOf(hub: HubProcess, id: string, token: string, until: (d: DesiredState) => boolean): Promise<DesiredState> {
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: id, username: id, password: token, reconnectPeriod: 0, connectTimeout: 10_000 });
  try {
    let latest: DesiredState | undefined;
    client.on('message', (_topic, payload) => {
      const decoded = decodeMessage('desired', payload);
      if (decoded.ok) latest = decoded.value;
    });
    await client.subscribeAsync(deviceTopic(id, 'desired'), { qos: 1 });
    return await waitFor(`${id}'s desired state`, () => latest !== undefined && until(latest) && latest, 15_000);
  } finally {
    await client.endAsync(true);
  }
}

test('the hub killed at random points of a deploy always restarts, and every created service has a key its creator can get', async (t) => {
  t.timeout(300_000);
  const budget = fuzzBudget(t, { iterations: ROUNDS, seconds: 240 });
  const rng = new Random(budget.seed);
  const root = await tempDir(t, 'edgeml-fault-');
  const data = join(root, 'data');
  await mkdir(data);
  let hub = await startHub(t, [], { data });
  const token = await enrollDevice(hub, 'fault-dev', { site: 'fault' });
  const keys = new Map<string, string>();
  const outcomes: string[] = [];

  for (let round = 0; round < budget.iterations; round++) {
    const service = `svc-${round}`;
    const body = { service, image: `127.0.0.1:5000/x@sha256:${sha256hex(`${budget.seed}-${round}`)}`, target: { site: 'fault' } };
    const idempotencyKey = `fault-${budget.seed}-${round}`;
    const delay = rng.int(0, MAX_KILL_DELAY_MS);
    const first = deploy(hub, body, idempotencyKey).then(
      (answer) => answer,
      (err: Error) => err,
    );
    // The fault: a kill at a random instant of the request (before, during or after its write).
    await new Promise((resolve) => setTimeout(resolve, delay));
    await hub.kill('SIGKILL');
    const before = await first;

    hub = await startHub(t, [], { data });
    t.true(hub.running, `round ${round}: the hub starts again`);
    // The client retries with the same key until it gets an answer.
    const answer = await waitFor(`round ${round}: an answer to the retry`, () => deploy(hub, body, idempotencyKey), 30_000, 200);
    const what = `seed ${budget.seed} round ${round} (kill after ${delay} ms; first attempt: ${before instanceof Error ? before.message : `${before.status}${before.replayed ? ' replayed' : ''}`}): ${answer.status} ${JSON.stringify(answer.body)}`;
    t.is(answer.status, 201, what);
    t.regex(answer.body.key ?? '', /^ems_/, `the answer carries the service key: ${what}`);
    if (!(before instanceof Error)) {
      // The first attempt was answered: the retry replays it, key included.
      t.is(before.status, 201, what);
      t.true(answer.replayed, `a retry of an answered create is a replay: ${what}`);
      t.is(answer.body.key, before.body.key, `the replay carries the same key: ${what}`);
    }
    outcomes.push(before instanceof Error ? (answer.replayed ? 'cut off after its write' : 'cut off before its write') : 'answered before the kill');
    keys.set(service, answer.body.key);
    const desired = await desiredOf(hub, 'fault-dev', token, (d) => d.services.some((s) => s.name === service));
    t.is(desired.services.find((s) => s.name === service)?.keyHash, sha256hex(answer.body.key), `the devices are told the hash of the creator's key: ${what}`);
  }

  t.log(`first attempts: ${outcomes.join('; ')}`);

  // The same key for another request is refused, not answered with the first one's outcome.
  const mismatch = await deploy(hub, { service: 'svc-0', image: `127.0.0.1:5000/x@sha256:${'f'.repeat(64)}`, target: { site: 'fault' } }, `fault-${budget.seed}-0`);
  t.is(mismatch.status, 422, JSON.stringify(mismatch.body));
  t.is(mismatch.body.error?.code, 'HUB_E_IDEMPOTENCY_MISMATCH');

  // After one more crash, every created service is there with its creator's key.
  await hub.kill('SIGKILL');
  hub = await startHub(t, [], { data });
  const health = await api<{ status: string }>(hub, 'GET', '/healthz');
  t.like(health, { status: 200, body: { status: 'ok' } });
  const desired = await desiredOf(hub, 'fault-dev', token, (d) => d.services.length >= keys.size);
  t.deepEqual(
    Object.fromEntries(desired.services.map((s) => [s.name, s.keyHash])),
    Object.fromEntries([...keys].map(([name, key]) => [name, sha256hex(key)])),
    `seed ${budget.seed}: the services and key hashes the device is told`,
  );
});
