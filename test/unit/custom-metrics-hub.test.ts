/**
 * Custom metrics on the hub: summed per service since the hub started for /metrics (bounded names),
 * summed over a window for the service report (with means), a batch whose custom figures break the
 * protocol kept without them and counted by the inbox, and `lastSeen` moving with any message.
 */
import test from 'ava';
import { Memory } from 'lowdb';
import { pino } from 'pino';
import { startInbox } from '../../hub/broker/inbox.js';
import { topicMatches, type Broker, type PublishGate } from '../../hub/broker/broker.js';
import { DeviceDirectory, LAST_SEEN_WRITE_MS, OBSERVATION_FLUSH_MS } from '../../hub/fleet/device-directory.js';
import { hubMetricFamilies, type HubFigures } from '../../hub/http/prometheus.js';
import type { HubData } from '../../hub/store/hub-data.js';
import { LowdbHubStore } from '../../hub/store/lowdb-store.js';
import { StoredProblems } from '../../hub/store/problems.js';
import { withoutCustom } from '../../hub/telemetry/custom-salvage.js';
import { FleetCounters } from '../../hub/telemetry/fleet-counters.js';
import { renderExposition } from '../../hub/telemetry/prometheus-text.js';
import type { StoredRecord } from '../../hub/telemetry/records.js';
import { serviceReport } from '../../hub/telemetry/service-report.js';
import { ROLLOUT_PHASES, type RolloutPhase } from '../../shared/api/rollouts.js';
import { encodeMessage, MAX_CUSTOM_METRICS, type MetricsBatch, type TelemetryBatch } from '../../shared/protocol.js';
import { allDevices, deviceTopic } from '../../shared/topics.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { metricsBatch, serviceInterval } from '../helpers/telemetry-batches.js';

const quiet = pino({ level: 'silent' });
/** lowdb in memory has written once the pending promise jobs have run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));
const withCustom = (custom: MetricsBatch['services'][string]['custom'], to = '2024-05-01T12:00:10.000Z'): MetricsBatch =>
  metricsBatch({ to, services: { iris: serviceInterval({ requests: 1, responses: { '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 0 }, custom }) } });

function figures(services: HubFigures['services']): HubFigures {
  return {
    version: '0',
    uptimeSeconds: 1,
    devicesEnrolled: 0,
    devicesOnline: 0,
    mqttConnectedClients: 0,
    messagesReceived: 0,
    messagesInvalidByChannel: {},
    messagesInvalidByDevice: {},
    batchesStored: 0,
    batchesDuplicate: 0,
    batchesInvalid: 0,
    customDropped: 2,
    outboxDropped: { metrics: 0, capture: 0 },
    services,
    serviceReplicas: [],
  };
}

test('fleet counters add custom figures over devices and batches; /metrics shows them by service and name', (t) => {
  const fleet = new FleetCounters(quiet);
  fleet.add('gw-1', withCustom({ counters: { scored: 3 }, observations: { conf: { count: 2, sum: 1.5, min: 0.5, max: 1 } } }));
  fleet.add('gw-2', withCustom({ counters: { scored: 4, 'odd"name': 1 }, observations: { conf: { count: 1, sum: 0.25, min: 0.25, max: 0.25 } } }));
  fleet.add('gw-2', metricsBatch());
  const iris = fleet.services().get('iris')!;
  t.deepEqual(iris.custom, { counters: { 'odd"name': 1, scored: 7 }, observations: { conf: { count: 3, sum: 1.75, min: 0.25, max: 1 } } });
  const text = renderExposition(hubMetricFamilies(figures(fleet.services()), Object.fromEntries(ROLLOUT_PHASES.map((p) => [p, 0])) as Record<RolloutPhase, number>));
  t.true(text.includes('# TYPE edgeml_custom_total counter'));
  t.true(text.includes('edgeml_custom_total{service="iris",name="scored"} 7'));
  t.true(text.includes('edgeml_custom_total{service="iris",name="odd\\"name"} 1'), 'label values escaped');
  t.true(text.includes('edgeml_custom_observation_count{service="iris",name="conf"} 3'));
  t.true(text.includes('edgeml_custom_observation_sum{service="iris",name="conf"} 1.75'));
  t.true(text.includes('edgeml_telemetry_custom_dropped_total 2'));
});

test('fleet counters keep at most MAX_CUSTOM_METRICS names per service and count the others', (t) => {
  const fleet = new FleetCounters(quiet);
  const many = (from: number) => Object.fromEntries(Array.from({ length: MAX_CUSTOM_METRICS }, (_, i) => [`n${from + i}`, 1]));
  fleet.add('gw-1', withCustom({ counters: many(0) }));
  fleet.add('gw-1', withCustom({ counters: { ...many(0), n500: 1, n501: 1 } }));
  const iris = fleet.services().get('iris')!;
  t.is(Object.keys(iris.custom!.counters!).length, MAX_CUSTOM_METRICS);
  t.is(iris.custom!.counters!.n0, 2);
  t.is(iris.customLeftOut, 2);
});

test('service report: custom figures summed over the window with a mean; empty when the code counts nothing', async (t) => {
  const records: StoredRecord[] = [
    { kind: 'metrics', device: 'gw-1', ts: Date.parse('2024-05-01T12:00:10Z'), data: withCustom({ counters: { scored: 2 }, observations: { conf: { count: 2, sum: 1, min: 0.4, max: 0.6 } } }), batch: 'a' },
    { kind: 'metrics', device: 'gw-2', ts: Date.parse('2024-05-01T12:00:20Z'), data: withCustom({ counters: { scored: 5 }, observations: { conf: { count: 2, sum: 2, min: 0.9, max: 1.1 } } }), batch: 'b' },
    { kind: 'metrics', device: 'gw-2', ts: Date.parse('2024-05-01T12:00:30Z'), data: metricsBatch(), batch: 'c' },
  ];
  const archive = { read: () => (async function* () { yield* records; })() };
  const window = { since: Date.parse('2024-05-01T12:00:00Z'), until: Date.parse('2024-05-01T12:01:00Z') };
  const report = await serviceReport(archive, { service: 'iris', ...window });
  t.deepEqual(report.custom, { counters: { scored: 7 }, observations: { conf: { count: 4, sum: 3, min: 0.4, max: 1.1, mean: 0.75 } } });
  const none = await serviceReport({ read: () => (async function* () { yield* records.slice(2); })() }, { service: 'iris', ...window });
  t.deepEqual(none.custom, { counters: {}, observations: {} });
});

/** Only what the inbox uses of a broker: subscriptions and the telemetry gate. */
function fakeBroker() {
  const subs: Array<{ filter: string; on: (topic: string, payload: Buffer) => void }> = [];
  const gates: PublishGate[] = [];
  const broker = {
    subscribe: async (filter: string, on: (topic: string, payload: Buffer) => void) => void subs.push({ filter, on }),
    gate: (_filter: string, gate: PublishGate) => void gates.push(gate),
  } as unknown as Broker;
  const deliver = async (topic: string, payload: Buffer) => {
    if (topicMatches(allDevices('telemetry'), topic)) return gates[0]!(topic, payload);
    for (const s of subs) if (topicMatches(s.filter, topic)) s.on(topic, payload);
  };
  return { broker, deliver };
}

test('inbox: a batch whose custom figures break the protocol is kept without them, and counted', async (t) => {
  const { broker, deliver } = fakeBroker();
  const stored: TelemetryBatch[] = [];
  const inbox = await startInbox(broker, { telemetry: async (_d, b) => void stored.push(b) }, quiet);
  const good = withCustom({ counters: { scored: 1 } });
  const bad = JSON.parse(JSON.stringify(good)) as { services: { iris: { custom: unknown } } };
  bad.services.iris.custom = { counters: { 'not a name': -1 } };
  await deliver(deviceTopic('gw-1', 'telemetry'), encodeMessage('telemetry', good));
  await deliver(deviceTopic('gw-1', 'telemetry'), Buffer.from(JSON.stringify(bad)));
  t.is(stored.length, 2);
  t.deepEqual((stored[0] as MetricsBatch).services.iris!.custom, { counters: { scored: 1 } });
  t.false('custom' in (stored[1] as MetricsBatch).services.iris!);
  t.is((stored[1] as MetricsBatch).services.iris!.requests, 1, 'the gateway counts are kept');
  t.is(inbox.customDropped(), 1);
  t.is(inbox.stats().invalid, 0);
  // Invalid apart from custom: still dropped whole.
  await deliver(deviceTopic('gw-1', 'telemetry'), Buffer.from(JSON.stringify({ ...bad, from: 3 })));
  t.is(inbox.customDropped(), 1);
  t.is(inbox.stats().invalid, 1);
  t.is(withoutCustom(Buffer.from('not json')), undefined);
  t.is(withoutCustom(encodeMessage('telemetry', metricsBatch())), undefined, 'nothing to remove');
});

test('inbox: every message from a device, valid or not, tells `seen`', async (t) => {
  const { broker, deliver } = fakeBroker();
  const seen: string[] = [];
  await startInbox(broker, { telemetry: async () => undefined }, quiet, { seen: (id) => seen.push(id) });
  await deliver(deviceTopic('gw-1', 'telemetry'), encodeMessage('telemetry', metricsBatch()));
  await deliver(deviceTopic('gw-2', 'reported'), Buffer.from('{"broken'));
  await deliver(deviceTopic('gw-3', 'cmd/ack'), Buffer.from('{}'));
  t.deepEqual(seen, ['gw-1', 'gw-2', 'gw-3']);
});

test('lastSeen moves with every message in memory; the store is written at most every LAST_SEEN_WRITE_MS', async (t) => {
  const T0 = Date.parse('2025-01-01T00:00:00Z');
  const clock = new ManualClock(T0);
  const memory = new Memory<HubData>();
  const store = await LowdbHubStore.open(memory, 'memory');
  let writes = 0;
  const save = store.devices.saveObservations.bind(store.devices);
  store.devices.saveObservations = async (batch) => {
    writes += 1;
    return save(batch);
  };
  const dir = await DeviceDirectory.load(store.devices, clock, quiet, new StoredProblems(quiet));
  await dir.enroll({ id: 'gw-1' }, { keyId: 'aaaaaaaaaaaa', keyName: 'ops' });
  dir.seen('nobody');
  for (let i = 0; i < 20; i++) {
    clock.advance(1000);
    dir.seen('gw-1');
    t.is(dir.get('gw-1').lastSeen, new Date(clock.now()).toISOString(), 'the view answers the time in memory');
    await settled();
  }
  // 20 s of a message a second: a write at the first and one 10 s later.
  t.is(writes, 2);
  const stored = async () => (await store.devices.get('gw-1'))!.observed.lastSeen;
  // The write takes what memory holds when the flush runs, 2 s after the write was asked for at 11 s.
  t.is(await stored(), new Date(T0 + 13_000).toISOString());
  clock.advance(LAST_SEEN_WRITE_MS - 9000 + OBSERVATION_FLUSH_MS);
  dir.seen('gw-1');
  clock.advance(OBSERVATION_FLUSH_MS);
  await settled();
  t.is(writes, 3);
  await dir.close();
  t.is(await stored(), dir.get('gw-1').lastSeen);
});
