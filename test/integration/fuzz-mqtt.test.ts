/**
 * MQTT fuzzing against a real hub process's listener: bytes that are not MQTT, CONNECTs that are
 * almost right, packets announcing hundreds of MB before and after CONNECT (then a bounded
 * trickle), and, logged in as an enrolled device, mutated and random payloads on its own topics
 * and publishes to topics it does not own. Invariants: the hub stays up and answers /healthz, its
 * resident memory stays bounded, an oversized packet gets its connection closed before the trickle
 * ends, no device secret shows in its output, and afterwards a legitimate device connects and its
 * telemetry batch is stored.
 *
 * Seeded and bounded (see test/helpers/fuzz/random.ts).
 */
import test from 'ava';
import mqtt from 'mqtt';
import type { DeviceTelemetry } from '../../shared/api/telemetry.js';
import { deviceTopic } from '../../shared/topics.js';
import { startHub } from '../helpers/edgeml-process.js';
import { foreignTopics, malformedConnect, notConnect, rawPacket, rawSession, validDeviceMessages } from '../helpers/fuzz/mqtt-inputs.js';
import { brokenJson, mutate } from '../helpers/fuzz/json-schema-values.js';
import { fuzzBudget, Random } from '../helpers/fuzz/random.js';
import { residentBytes } from '../helpers/fuzz/stored-state.js';
import { api, enrollDevice } from '../helpers/hub-api.js';
import { connectPacket, publishPacket } from '../helpers/mqtt-wire.js';
import { captureSample, capturesBatch } from '../helpers/telemetry-batches.js';
import { waitFor } from '../helpers/wait.js';

/** What a packet announces in the attacks: far beyond anything legitimate. */
const ANNOUNCED = 250 * 1024 * 1024;
/** How much of it is then sent: enough that a broker buffering it would show, small enough for CI. */
const TRICKLE = 2 * 1024 * 1024;
const CONCURRENCY = 8;
/** Resident memory the hub may gain over the whole run (the bound for the header attack). */
const MAX_RSS_GROWTH = 50 * 1024 * 1024;

const trickle = (rng: Random) => Array.from({ length: TRICKLE / 16_384 }, () => rng.bytes(16_384));

test('MQTT fuzz: garbage and malformed CONNECTs, oversized packets before and after CONNECT, mutated device messages; the hub stays up and bounded, a real device still works', async (t) => {
  t.timeout(240_000);
  const budget = fuzzBudget(t, { iterations: 400, seconds: 20 });
  const rng = new Random(budget.seed);
  const hub = await startHub(t);
  const fuzzToken = await enrollDevice(hub, 'fuzz-dev', { site: 'fuzz' });
  const legitToken = await enrollDevice(hub, 'legit-dev', { site: 'fuzz' });
  const creds = { clientId: 'fuzz-dev', username: 'fuzz-dev', password: fuzzToken };
  const pid = hub.child.pid!;
  const baseline = await residentBytes(pid);
  let peak = baseline;

  const failures: string[] = [];
  const messages = validDeviceMessages(new Date());
  const ownChannels = Object.keys(messages) as Array<keyof typeof messages>;
  let packetId = 1;
  const nextId = () => (packetId = (packetId % 65_535) + 1);

  /** One connection's worth of fuzz: what it sends, and what must have happened. */
  const session = async (n: number, r: Random): Promise<void> => {
    const kind = r.int(0, 9);
    if (kind <= 1) {
      const input = notConnect(r);
      await rawSession(hub.mqtt, [input.bytes], 1000);
    } else if (kind <= 3) {
      const input = malformedConnect(r, creds);
      await rawSession(hub.mqtt, [input.bytes], 1000);
    } else if (kind === 4) {
      // An announced giant before CONNECT (as a CONNECT, or any packet): closed from its header.
      const first = r.pick([0x10, 0x30, 0x82]);
      const result = await rawSession(hub.mqtt, [rawPacket(first, Buffer.alloc(0), ANNOUNCED).subarray(0, 5), ...trickle(r)], 5000);
      if (!result.closedByBroker) failures.push(`#${n}: a packet of type 0x${first.toString(16)} announcing ${ANNOUNCED} bytes before CONNECT was not closed by the broker (${result.written} bytes sent)`);
    } else if (kind === 5) {
      // The same after a valid CONNECT, as the device itself.
      const result = await rawSession(hub.mqtt, [connectPacket(creds), 'await-answer', rawPacket(0x32, Buffer.alloc(0), ANNOUNCED).subarray(0, 5), ...trickle(r)], 5000);
      if (!result.closedByBroker) failures.push(`#${n}: a PUBLISH announcing ${ANNOUNCED} bytes after CONNECT was not closed by the broker (${result.written} bytes sent)`);
    } else {
      // Logged in: payloads on its own topics, then perhaps one on a topic it may not use.
      const packets: Buffer[] = [];
      for (let i = r.int(1, 12); i > 0; i--) {
        const channel = r.pick(ownChannels);
        const valid = r.pick(messages[channel]);
        const roll = r.next();
        const payload =
          roll < 0.15 ? JSON.stringify(valid) : roll < 0.7 ? mutate(valid, r, 300_000).text : roll < 0.85 ? brokenJson(valid, r).text : r.bytes(r.int(0, 4096));
        packets.push(publishPacket({ topic: deviceTopic('fuzz-dev', channel), payload, id: nextId(), retain: channel === 'status' && r.chance(0.5) }));
      }
      if (r.chance(0.3)) packets.push(publishPacket({ topic: r.pick(foreignTopics('fuzz-dev', 'legit-dev')), payload: JSON.stringify(r.pick(messages.telemetry)), id: nextId() }));
      await rawSession(hub.mqtt, [connectPacket(creds), 'await-answer', ...packets], 300);
    }
  };

  let started = 0;
  const worker = async (w: number) => {
    const r = rng.fork(`worker-${w}`);
    while (!budget.spent(started) && hub.running) {
      const n = started++;
      await session(n, r);
      peak = Math.max(peak, await residentBytes(pid).catch(() => peak));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  t.log(`${started} connections; RSS ${Math.round(baseline / 2 ** 20)} MB at start, peak ${Math.round(peak / 2 ** 20)} MB`);

  t.true(hub.running, `seed ${budget.seed}: the hub exited: ${hub.tail(10)}`);
  const health = await api<{ status: string }>(hub, 'GET', '/healthz');
  t.is(health.status, 200, `seed ${budget.seed}: /healthz`);
  // Garbage collection may lag behind the last attack: wait for memory to come back within bounds.
  const settled = await waitFor('the hub\'s memory within bounds', async () => {
    const rss = await residentBytes(pid);
    return rss - baseline < MAX_RSS_GROWTH ? rss : undefined;
  }, 15_000).catch(async () => residentBytes(pid));
  t.true(settled - baseline < MAX_RSS_GROWTH, `seed ${budget.seed}: RSS grew from ${baseline} to ${settled} bytes`);
  t.deepEqual(failures.slice(0, 10), [], `seed ${budget.seed}: ${failures.length} failures`);

  // A legitimate device still connects, and its batch is stored (acknowledged means stored).
  const client = await mqtt.connectAsync(`mqtt://${hub.mqtt}`, { clientId: 'legit-dev', username: 'legit-dev', password: legitToken, reconnectPeriod: 0, connectTimeout: 10_000 });
  t.teardown(() => client.endAsync(true));
  const valid = validDeviceMessages(new Date());
  await client.publishAsync(deviceTopic('legit-dev', 'reported'), JSON.stringify(valid.reported[0]), { qos: 1 });
  await client.publishAsync(deviceTopic('legit-dev', 'telemetry'), JSON.stringify(valid.telemetry[0]), { qos: 1 });
  await client.publishAsync(deviceTopic('legit-dev', 'telemetry'), JSON.stringify(capturesBatch({ id: 'legit-c', samples: [captureSample({ ts: new Date().toISOString() })] })), { qos: 1 });
  const stored = (await api<DeviceTelemetry>(hub, 'GET', '/api/v1/telemetry/devices/legit-dev?since=1h', { key: hub.adminKey })).body;
  t.like(stored, { device: 'legit-dev', samples: 1 }, `seed ${budget.seed}: legit-dev's metrics batch`);

  const output = [...hub.rawOutput, ...hub.logs.map((l) => JSON.stringify(l))].join('\n');
  for (const [name, secret] of [['fuzz-dev token', fuzzToken], ['legit-dev token', legitToken], ['admin key', hub.adminKey]] as const) {
    t.false(output.includes(secret), `the ${name} appears in the hub's output`);
  }
});
