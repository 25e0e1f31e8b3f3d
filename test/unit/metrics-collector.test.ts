/**
 * The metrics collector (agent/telemetry/metrics-collector.ts) on a manual clock: one valid batch per
 * interval into the metrics lane, the gateway's counts mapped field by field and covering the agent's
 * life without gaps, the queue's counts reported, the autoscaler's decisions merged per service,
 * and the last partial interval queued on close.
 */
import test from 'ava';
import { pino } from 'pino';
import { GatewayMetrics } from '../../agent/gateway/metrics.js';
import { batchIds } from '../../agent/telemetry/batch-ids.js';
import type { ScalingCounts } from '../../agent/scale/autoscaler.js';
import { MetricsCollector } from '../../agent/telemetry/metrics-collector.js';
import type { Batch } from '../../agent/telemetry/outbox.js';
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import { decodeMessage, TELEMETRY_BATCH_ID_PATTERN, type DeviceMetrics, type MetricsBatch } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';

const INTERVAL = 10_000;
const T0 = Date.parse('2025-03-01T08:00:00.000Z');
const DEVICE: DeviceMetrics = { cpuPercent: 5, memory: { usedBytes: 1, totalBytes: 2 }, disk: null, temperatureC: null, uptimeSeconds: 9, network: null };
const settle = () => new Promise((r) => setImmediate(r));

function setup(opts: { append?: (b: Batch) => Promise<void>; scaling?: () => Record<string, ScalingCounts> } = {}) {
  const clock = new ManualClock(T0);
  const gateway = new GatewayMetrics(clock, () => ({ inFlight: 2, queued: 1, replicas: 3 }));
  const appended: Batch[] = [];
  const errors: Array<Record<string, unknown>> = [];
  const collector = new MetricsCollector({
    intervalMs: INTERVAL,
    gateway,
    device: async () => DEVICE,
    containers: async () => [{ service: 'iris', revision: 2, cpuPercent: 1.5, memoryBytes: 100, memoryLimitBytes: null }],
    outbox: { dropped: () => ({ metrics: 4, capture: 0 }), size: () => ({ metrics: { count: 7, bytes: 7000 }, capture: { count: 1, bytes: 10 }, feedback: { count: 2, bytes: 20 } }) },
    append: opts.append ?? (async (b) => void appended.push(b)),
    ...(opts.scaling ? { scaling: { takeInterval: opts.scaling } } : {}),
    nextId: batchIds('m'),
    clock,
    logger: pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line) as Record<string, unknown>) }),
  });
  /** One request to `service` taking `ms`, answered with `status`. */
  const request = (service: string, ms: number, status = 200) => {
    const exchange = gateway.start(service);
    clock.ms += ms;
    exchange.finish({ kind: 'answered', status });
  };
  const batches = () =>
    appended.map((b) => {
      if (b.lane !== 'metrics') throw new Error(`batch ${b.id} went to the ${b.lane} lane`);
      const decoded = decodeMessage('telemetry', b.bytes);
      if (!decoded.ok) throw new Error(decoded.error);
      return decoded.value as MetricsBatch;
    });
  return { clock, collector, appended, errors, request, batches };
}

test('one valid batch per interval, with the gateway counts mapped and the intervals back to back', async (t) => {
  const { clock, collector, request, batches } = setup();
  collector.start();
  request('iris', 3);
  request('iris', 40, 404);
  clock.advance(INTERVAL - 43);
  await settle();
  request('iris', 700);
  clock.advance(INTERVAL - 700);
  await settle();

  const [first, second] = batches();
  t.is(batches().length, 2);
  t.is(first!.from, new Date(T0).toISOString());
  t.is(first!.to, new Date(T0 + INTERVAL).toISOString());
  t.is(second!.from, first!.to, 'no gap, no overlap');
  t.deepEqual(first!.services.iris, {
    requests: 2,
    responses: { '2xx': 1, '3xx': 0, '4xx': 1, '5xx': 0 },
    unauthenticated: 0,
    rejected: 0,
    queueTimeouts: 0,
    upstreamErrors: 0,
    aborted: 0,
    inFlight: 2,
    queued: 1,
    latencyMs: { boundsMs: [...LATENCY_BOUNDS_MS], counts: [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], sumMs: 43 },
    replicas: 3,
  });
  t.is(second!.services.iris!.requests, 1, 'counts start again each interval');
  t.deepEqual(second!.services.iris!.latencyMs.counts, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  t.deepEqual(first!.device, DEVICE);
  t.deepEqual(first!.containers, [{ service: 'iris', revision: 2, cpuPercent: 1.5, memoryBytes: 100, memoryLimitBytes: null }]);
  t.deepEqual(first!.outbox, { dropped: { metrics: 4, capture: 0 }, queued: { metrics: 7, capture: 1, feedback: 2 } });
  t.not(first!.id, second!.id);
  for (const b of batches()) t.regex(b.id, new RegExp(TELEMETRY_BATCH_ID_PATTERN));
  await collector.close();
});

test("the autoscaler's decisions of the interval ride along per service, an idle one that scaled included", async (t) => {
  const taken: Array<Record<string, ScalingCounts>> = [{ iris: { up: 2, down: 0, held: 1 }, quiet: { up: 0, down: 1, held: 0 } }, {}];
  const { clock, collector, request, batches } = setup({ scaling: () => taken.shift() ?? {} });
  collector.start();
  request('iris', 3);
  request('busy', 3);
  clock.advance(INTERVAL - 6);
  await settle();
  request('iris', 3);
  clock.advance(INTERVAL - 3);
  await settle();

  const [first, second] = batches();
  t.deepEqual(first!.services.iris!.scaling, { up: 2, down: 0, held: 1 });
  t.is(first!.services.iris!.requests, 1, 'merged into the gateway counts');
  t.false('scaling' in first!.services.busy!, 'a service that did not scale carries no scaling');
  t.like(first!.services.quiet, { requests: 0, inFlight: 0, queued: 0, scaling: { up: 0, down: 1, held: 0 } });
  t.is(first!.services.quiet!.latencyMs.counts.reduce((a, b) => a + b, 0), 0);
  t.false('scaling' in second!.services.iris!, 'taken once, like the gateway counts');
  t.false('quiet' in second!.services);
  await collector.close();
});

test('close queues the last partial interval, so a clean stop loses no counts, and leaves no timer', async (t) => {
  const { clock, collector, request, batches } = setup();
  collector.start();
  clock.advance(INTERVAL);
  await settle();
  request('iris', 2);
  clock.advance(1500);
  await collector.close();
  const all = batches();
  t.is(all.length, 2);
  t.is(all[1]!.from, all[0]!.to);
  t.is(all[1]!.to, new Date(T0 + INTERVAL + 1502).toISOString());
  t.is(all[1]!.services.iris!.requests, 1);
  t.is(clock.pending(), 0);
});

test('a batch that cannot be queued is logged with the interval it covered; the next interval goes on', async (t) => {
  let fail = true;
  const appended: Batch[] = [];
  const { clock, collector, errors } = setup({
    append: async (b) => {
      if (fail) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      appended.push(b);
    },
  });
  collector.start();
  clock.advance(INTERVAL);
  await settle();
  t.is(errors.length, 1);
  t.is(errors[0]!.msg, 'a metrics batch was lost');
  t.is(errors[0]!.to, new Date(T0 + INTERVAL).toISOString());
  fail = false;
  clock.advance(INTERVAL);
  await settle();
  t.is(appended.length, 1);
  await collector.close();
});

test('a slow tick is followed at once, never overlapped', async (t) => {
  let release!: () => void;
  let calls = 0;
  const clock = new ManualClock(T0);
  const appended: Batch[] = [];
  const collector = new MetricsCollector({
    intervalMs: INTERVAL,
    gateway: new GatewayMetrics(clock, () => ({ inFlight: 0, queued: 0 })),
    device: () => {
      calls += 1;
      return calls === 1 ? new Promise((r) => (release = () => r(DEVICE))) : Promise.resolve(DEVICE);
    },
    containers: async () => [],
    outbox: { dropped: () => ({ metrics: 0, capture: 0 }), size: () => ({ metrics: { count: 0, bytes: 0 }, capture: { count: 0, bytes: 0 }, feedback: { count: 0, bytes: 0 } }) },
    append: async (b) => void appended.push(b),
    nextId: batchIds('m'),
    clock,
    logger: pino({ level: 'silent' }),
  });
  collector.start();
  clock.advance(INTERVAL);
  clock.advance(INTERVAL * 2);
  await settle();
  t.is(calls, 1, 'no second tick while the first is running');
  release();
  await settle();
  t.is(appended.length, 1);
  clock.advance(0);
  await settle();
  t.is(calls, 2, 'the overdue tick runs at once');
  await collector.close();
});
