/**
 * Custom metrics on the agent (agent/telemetry/custom-metrics*.ts, metrics-collector.ts): the
 * container's `/metrics` checked, cumulative totals turned into interval deltas per container
 * (reset on a new startedAt or a falling counter), replicas summed per service, failures and
 * timeouts counted and left out, and the figures riding in a batch the protocol accepts.
 */
import test from 'ava';
import { pino } from 'pino';
import { GatewayMetrics } from '../../agent/gateway/metrics.js';
import { batchIds } from '../../agent/telemetry/batch-ids.js';
import { CustomMetricsDeltas, parseContainerMetrics, type ContainerCustomMetrics } from '../../agent/telemetry/custom-metrics.js';
import { CustomMetricsReader, type MetricsFetch, type ReadyReplica } from '../../agent/telemetry/custom-metrics-reader.js';
import { MetricsCollector } from '../../agent/telemetry/metrics-collector.js';
import type { Batch } from '../../agent/telemetry/outbox.js';
import { decodeMessage, MAX_CUSTOM_METRICS, type MetricsBatch } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';

const T0 = Date.parse('2025-03-01T08:00:00.000Z');
const STARTED = '2025-03-01T08:00:01.000Z';
const quiet = pino({ level: 'silent' });

function reading(counters: Record<string, number>, observations: ContainerCustomMetrics['observations'] = {}, startedAt = STARTED): ContainerCustomMetrics {
  return { startedAt, counters, observations };
}

test('parse: the contract body is taken; bad names, values and names past the 100th are left out and counted', (t) => {
  const counters: Record<string, number> = { ok: 2, 'bad name': 1, neg: -1 };
  for (let i = 0; i < MAX_CUSTOM_METRICS + 5; i++) counters[`c${i}`] = i;
  const parsed = parseContainerMetrics({ startedAt: STARTED, counters, observations: { lat: { count: 2, sum: 3, min: 1, max: 2 }, half: { count: 1.5, sum: 1, min: 1, max: 1 } }, dropped: 0 });
  if (!parsed.ok) return t.fail(parsed.error);
  t.is(parsed.value.counters.ok, 2);
  t.false('bad name' in parsed.value.counters);
  t.false('neg' in parsed.value.counters);
  t.is(Object.keys(parsed.value.counters).length + Object.keys(parsed.value.observations).length, MAX_CUSTOM_METRICS);
  // 'bad name', neg, 6 counters past the 100th, lat (no room), half (not a whole count).
  t.is(parsed.leftOut, 2 + 6 + 2);
  t.false(parseContainerMetrics({ counters: {} }).ok, 'startedAt is required');
  const proto = parseContainerMetrics(JSON.parse(`{"startedAt": "${STARTED}", "counters": {"__proto__": 3}}`));
  t.true(proto.ok && Object.hasOwn(proto.value.counters, '__proto__') && proto.value.counters.__proto__ === 3, 'a __proto__ name stays a name');
  t.false(parseContainerMetrics([1]).ok);
  t.false(parseContainerMetrics('x').ok);
});

test('deltas: interval differences; a new startedAt or a falling counter counts from zero', (t) => {
  const deltas = new CustomMetricsDeltas(T0);
  const obs = (count: number, sum: number) => ({ lat: { count, sum, min: 1, max: 9 } });
  t.deepEqual(deltas.delta('c1', reading({ a: 3 }, obs(2, 10))), { counters: { a: 3 }, observations: { lat: { count: 2, sum: 10, min: 1, max: 9 } } });
  t.deepEqual(deltas.delta('c1', reading({ a: 5, b: 1 }, obs(2, 10))), { counters: { a: 2, b: 1 }, observations: {} });
  t.deepEqual(deltas.delta('c1', reading({ a: 5, b: 1 }, obs(5, 25))), { counters: {}, observations: { lat: { count: 3, sum: 15, min: 1, max: 9 } } });
  // The counter fell without a new startedAt (the runtime reset it): all of it is new.
  t.deepEqual(deltas.delta('c1', reading({ a: 1, b: 1 }, obs(5, 25))).counters, { a: 1, b: 1 });
  // Restarted: another startedAt, its totals are all new even where they are higher.
  t.deepEqual(deltas.delta('c1', reading({ a: 7 }, {}, '2025-03-01T08:05:00.000Z')).counters, { a: 7 });
});

test('deltas: a container that started before this agent gives a baseline, not its whole past', (t) => {
  const deltas = new CustomMetricsDeltas(T0);
  t.deepEqual(deltas.delta('old', reading({ a: 100 }, {}, '2025-03-01T07:00:00.000Z')), {});
  t.deepEqual(deltas.delta('old', reading({ a: 104 }, {}, '2025-03-01T07:00:00.000Z')).counters, { a: 4 });
  // Forgotten once out of rotation: back in with the same start, it is a baseline again.
  deltas.keepOnly(new Set());
  t.deepEqual(deltas.delta('old', reading({ a: 110 }, {}, '2025-03-01T07:00:00.000Z')), {});
});

function readerSetup(answers: Map<number, () => Promise<unknown>>, replicas: ReadyReplica[]) {
  const clock = new ManualClock(T0);
  const logs: Array<Record<string, unknown>> = [];
  const fetch: MetricsFetch = (port, signal) =>
    new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason as Error));
      const answer = answers.get(port);
      if (answer) answer().then(resolve, reject);
    });
  const reader = new CustomMetricsReader({
    replicas: () => replicas,
    fetch,
    timeoutMs: 1000,
    clock,
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) }),
  });
  return { clock, reader, logs };
}

test('reader: replicas summed per service; a failing, a hanging and a 404 replica left out, failures counted', async (t) => {
  let a = 0;
  const answers = new Map<number, () => Promise<unknown>>([
    [9001, async () => reading({ scored: (a += 2) }, { conf: { count: 1, sum: 0.5, min: 0.5, max: 0.5 } })],
    [9002, async () => reading({ scored: 5 }, { conf: { count: 2, sum: 1.8, min: 0.8, max: 1 } })],
    [9003, async () => Promise.reject(new Error('ECONNREFUSED'))],
    [9005, async () => undefined],
    [9006, async () => reading({ other: 1 })],
  ]);
  const { clock, reader, logs } = readerSetup(answers, [
    { service: 'iris', container: 'c1', port: 9001 },
    { service: 'iris', container: 'c2', port: 9002 },
    { service: 'iris', container: 'c3', port: 9003 },
    // Never answers: the timeout (on the injected clock) gives it up.
    { service: 'iris', container: 'c4', port: 9004 },
    { service: 'iris', container: 'c5', port: 9005 },
    { service: 'wine', container: 'w1', port: 9006 },
  ]);
  const first = reader.takeInterval();
  await new Promise((r) => setImmediate(r));
  clock.advance(1000);
  t.deepEqual(await first, {
    iris: { counters: { scored: 7 }, observations: { conf: { count: 3, sum: 2.3, min: 0.5, max: 1 } } },
    wine: { counters: { other: 1 } },
  });
  t.is(reader.failures(), 2);
  t.true(logs.some((l) => l.level === 40 && l.container === 'c4' && /no answer within 1000 ms/.test(String(l.reason))));
  const second = reader.takeInterval();
  await new Promise((r) => setImmediate(r));
  clock.advance(1000);
  // c1 counted 2 more; c2 and w1 nothing: a service with nothing new is left out.
  t.deepEqual(await second, { iris: { counters: { scored: 2 } } });
  t.is(reader.failures(), 4);
  // The second failure of the same replica is not repeated at warn.
  t.is(logs.filter((l) => l.level === 40 && l.container === 'c3').length, 1);
});

test('reader: a replica whose read failed is kept, so its next reading covers both intervals', async (t) => {
  let total = 0;
  let fail = false;
  const answers = new Map<number, () => Promise<unknown>>([[9001, async () => (fail ? Promise.reject(new Error('boom')) : reading({ n: (total += 3) }))]]);
  const { reader } = readerSetup(answers, [{ service: 'iris', container: 'c1', port: 9001 }]);
  t.deepEqual(await reader.takeInterval(), { iris: { counters: { n: 3 } } });
  fail = true;
  total += 3;
  t.deepEqual(await reader.takeInterval(), {});
  fail = false;
  t.deepEqual(await reader.takeInterval(), { iris: { counters: { n: 6 } } });
});

test('collector: custom figures ride in a batch the protocol accepts, also for a service without requests', async (t) => {
  const clock = new ManualClock(T0);
  const gateway = new GatewayMetrics(clock, () => ({ inFlight: 0, queued: 0, replicas: 1 }));
  const appended: Batch[] = [];
  const collector = new MetricsCollector({
    intervalMs: 10_000,
    gateway,
    device: async () => ({ cpuPercent: null, memory: null, disk: null, temperatureC: null, uptimeSeconds: null, network: null }),
    containers: async () => [],
    custom: { takeInterval: async () => ({ iris: { counters: { scored: 4 } }, wine: { observations: { conf: { count: 1, sum: 0.9, min: 0.9, max: 0.9 } } } }) },
    outbox: { dropped: () => ({ metrics: 0, capture: 0 }), size: () => ({ metrics: { count: 0, bytes: 0 }, capture: { count: 0, bytes: 0 }, feedback: { count: 0, bytes: 0 } }) },
    append: async (b) => void appended.push(b),
    nextId: batchIds('m'),
    clock,
    logger: quiet,
  });
  const exchange = gateway.start('iris');
  exchange.finish({ kind: 'answered', status: 200 });
  await collector.close();
  t.is(appended.length, 1);
  const decoded = decodeMessage('telemetry', appended[0]!.bytes);
  if (!decoded.ok) return t.fail(decoded.error);
  const batch = decoded.value as MetricsBatch;
  t.is(batch.services.iris!.requests, 1);
  t.deepEqual(batch.services.iris!.custom, { counters: { scored: 4 } });
  t.is(batch.services.wine!.requests, 0);
  t.deepEqual(batch.services.wine!.custom, { observations: { conf: { count: 1, sum: 0.9, min: 0.9, max: 0.9 } } });
});

test('protocol: a batch with a bad custom name or over 100 names is refused', (t) => {
  const base = { requests: 0, responses: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, unauthenticated: 0, rejected: 0, queueTimeouts: 0, upstreamErrors: 0, aborted: 0, inFlight: 0, queued: 0 };
  const latencyMs = { boundsMs: [1], counts: [0, 0], sumMs: 0 };
  const batch = (custom: unknown) =>
    JSON.stringify({
      v: 1,
      kind: 'metrics',
      id: 'm1',
      from: STARTED,
      to: STARTED,
      device: { cpuPercent: null, memory: null, disk: null, temperatureC: null, uptimeSeconds: null, network: null },
      containers: [],
      services: { iris: { ...base, latencyMs, custom } },
      outbox: { dropped: { metrics: 0, capture: 0 }, queued: { metrics: 0, capture: 0 } },
    });
  t.true(decodeMessage('telemetry', Buffer.from(batch({ counters: { 'a.b_c': 1 } }))).ok);
  t.false(decodeMessage('telemetry', Buffer.from(batch({ counters: { 'a b': 1 } }))).ok);
  t.false(decodeMessage('telemetry', Buffer.from(batch({ counters: { a: -1 } }))).ok);
  t.false(decodeMessage('telemetry', Buffer.from(batch({ counters: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`n${i}`, 1])) }))).ok);
});
