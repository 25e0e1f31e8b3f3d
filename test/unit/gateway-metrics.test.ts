/** The gateway's per-service counters (agent/gateway/metrics.ts) with a clock that only tells the time. */
import test from 'ava';
import { GatewayCodes } from '../../agent/gateway/errors.js';
import { GatewayMetrics, LATENCY_BOUNDS_MS, type ServiceGauges } from '../../agent/gateway/metrics.js';
import { FakeClock } from '../helpers/fake-clock.js';

const idle = (): ServiceGauges => ({ inFlight: 0, queued: 0 });

/** A request that takes `ms` on the clock and ends with `outcome`. */
function timed(metrics: GatewayMetrics, clock: FakeClock, service: string, ms: number, outcome: Parameters<ReturnType<GatewayMetrics['start']>['finish']>[0]): void {
  const exchange = metrics.start(service);
  clock.ms += ms;
  exchange.finish(outcome);
}

test('outcomes are counted by class and by cause; latency only for what the container answered', (t) => {
  const clock = new FakeClock(1000);
  const metrics = new GatewayMetrics(clock, idle);
  timed(metrics, clock, 'iris', 3, { kind: 'answered', status: 200 });
  timed(metrics, clock, 'iris', 40, { kind: 'answered', status: 400 });
  timed(metrics, clock, 'iris', 1, { kind: 'gateway-error', status: 401, code: GatewayCodes.UNAUTHENTICATED });
  timed(metrics, clock, 'iris', 1, { kind: 'gateway-error', status: 429, code: GatewayCodes.QUEUE_FULL });
  timed(metrics, clock, 'iris', 30_000, { kind: 'gateway-error', status: 503, code: GatewayCodes.QUEUE_TIMEOUT });
  timed(metrics, clock, 'iris', 2, { kind: 'gateway-error', status: 502, code: GatewayCodes.UPSTREAM });
  timed(metrics, clock, 'iris', 2, { kind: 'gateway-error', status: 413, code: GatewayCodes.TOO_LARGE });
  timed(metrics, clock, 'iris', 700, { kind: 'cut-off' });
  timed(metrics, clock, 'iris', 9, { kind: 'aborted' });

  const iris = metrics.snapshot().services.iris!;
  t.like(iris, { requests: 9, unauthenticated: 1, rejected: 1, queueTimeouts: 1, upstreamErrors: 2, aborted: 1, inFlight: 0, queued: 0 });
  t.deepEqual(iris.responses, { '2xx': 1, '3xx': 0, '4xx': 4, '5xx': 2 });
  const expected = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  expected[0] = 1; // 3 ms: (0, 5]
  expected[3] = 1; // 40 ms: (25, 50]
  t.deepEqual(iris.latencyMs, { boundsMs: LATENCY_BOUNDS_MS, counts: expected, sumMs: 43 });
});

test('the latency buckets have fixed bounds, upper bound included, and a +Inf bucket', (t) => {
  const clock = new FakeClock(0);
  const metrics = new GatewayMetrics(clock, idle);
  for (const ms of [0, 5, 6, 10_000, 10_001, 3_600_000]) timed(metrics, clock, 'iris', ms, { kind: 'answered', status: 200 });
  const { counts, boundsMs } = metrics.snapshot().services.iris!.latencyMs;
  t.deepEqual(boundsMs, [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]);
  t.deepEqual(counts, [2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
});

test('a request counts when it arrives, its outcome once when it ends', (t) => {
  const clock = new FakeClock(0);
  const metrics = new GatewayMetrics(clock, idle);
  const exchange = metrics.start('iris');
  t.like(metrics.snapshot().services.iris, { requests: 1, aborted: 0, responses: { '2xx': 0 } });
  exchange.finish({ kind: 'answered', status: 200 });
  exchange.finish({ kind: 'aborted' });
  t.like(metrics.snapshot().services.iris, { requests: 1, aborted: 0, responses: { '2xx': 1 } });
});

test('takeInterval returns the counts since the previous call and starts again; snapshot keeps the totals', (t) => {
  const clock = new FakeClock(1000);
  const metrics = new GatewayMetrics(clock, idle);
  timed(metrics, clock, 'iris', 10, { kind: 'answered', status: 200 });
  timed(metrics, clock, 'wine', 10, { kind: 'gateway-error', status: 429, code: GatewayCodes.QUEUE_FULL });

  const first = metrics.takeInterval();
  t.is(first.from, 1000);
  t.is(first.to, 1020);
  t.like(first.services, { iris: { requests: 1, responses: { '2xx': 1 } }, wine: { requests: 1, rejected: 1 } });

  clock.ms += 5;
  timed(metrics, clock, 'iris', 20, { kind: 'answered', status: 500 });
  const second = metrics.takeInterval();
  t.is(second.from, 1020);
  t.is(second.to, 1045);
  t.like(second.services, { iris: { requests: 1, responses: { '2xx': 0, '5xx': 1 } } });
  t.false('wine' in second.services, 'an idle service is left out of the interval');
  t.is(second.services.iris!.latencyMs.sumMs, 20);

  const totals = metrics.snapshot();
  t.is(totals.from, 1000);
  t.like(totals.services, { iris: { requests: 2, responses: { '2xx': 1, '5xx': 1 } }, wine: { requests: 1, rejected: 1 } });
  t.is(totals.services.iris!.latencyMs.sumMs, 30);
});

test('reports are copies, and carry the gauges the limiter keeps', (t) => {
  const clock = new FakeClock(0);
  const metrics = new GatewayMetrics(clock, (service) => ({ inFlight: service.length, queued: 7 }));
  timed(metrics, clock, 'iris', 1, { kind: 'answered', status: 200 });
  const report = metrics.snapshot();
  t.like(report.services.iris, { inFlight: 4, queued: 7 });
  report.services.iris!.requests = 99;
  report.services.iris!.latencyMs.counts[0] = 99;
  t.like(metrics.snapshot().services.iris, { requests: 1, latencyMs: { counts: [1] } });
  t.like(metrics.totals('iris'), { requests: 1 });
  t.like(metrics.totals('never-asked'), { requests: 0, responses: { '2xx': 0 } });
  t.deepEqual(metrics.snapshot().services['never-asked'], undefined, 'asking for totals adds no service');
});

test('an interval leaves out idle services but keeps one with requests in flight or waiting', (t) => {
  const clock = new FakeClock(0);
  let busy = { inFlight: 0, queued: 0 };
  const metrics = new GatewayMetrics(clock, (service) => (service === 'slow' ? busy : idle()));
  timed(metrics, clock, 'slow', 1, { kind: 'answered', status: 200 });
  timed(metrics, clock, 'gone', 1, { kind: 'answered', status: 200 });
  t.deepEqual(Object.keys(metrics.takeInterval().services), ['gone', 'slow']);
  t.deepEqual(Object.keys(metrics.takeInterval().services), []);
  busy = { inFlight: 1, queued: 2 };
  t.like(metrics.takeInterval().services, { slow: { requests: 0, inFlight: 1, queued: 2 } });
  t.deepEqual(Object.keys(metrics.snapshot().services), ['gone', 'slow'], 'the totals keep every service');
});

test('a clock stepped back during a request counts it as 0 ms, never negative (the batch would be invalid)', (t) => {
  const clock = new FakeClock(10_000);
  const metrics = new GatewayMetrics(clock, idle);
  const exchange = metrics.start('iris');
  clock.ms -= 2_000;
  exchange.finish({ kind: 'answered', status: 200 });
  const h = metrics.takeInterval().services.iris!.latencyMs;
  t.is(h.sumMs, 0);
  t.is(h.counts[0], 1);
});
