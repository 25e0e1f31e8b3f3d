/**
 * Rollout gates: thresholds, breach reasons, the HealthGates that judge stored figures
 * (hub/fleet/rollout-gates.ts), the measurement from a fake archive and fake labelled data
 * (hub/fleet/rollout-gates-measure.ts), and the CLI flags (cli/commands/rollout-options.ts).
 */
import test from 'ava';
import { Command } from 'commander';
import { addRolloutOptions, rolloutRequest, type RolloutFlags } from '../../cli/commands/rollout-options.js';
import { EVAL_METRIC_NAMES } from '../../shared/api/retraining.js';
import { planBatches, resolveOptions } from '../../hub/fleet/rollout-engine.js';
import { BASELINE_SAMPLE, GateMeasureError, gateMeter, type GateSources } from '../../hub/fleet/rollout-gates-measure.js';
import { breachReason, configuredGates, MEASURE_EVERY_MS, parseMetricGate, recordedGates, shortReason } from '../../hub/fleet/rollout-gates.js';
import type { RolloutRecord } from '../../hub/store/store.js';
import { ERROR_RATE_PATTERN, GATE_METRIC_PATTERN, rolloutRequestProblem, type RolloutGate, type RolloutRequest } from '../../shared/api/rollouts.js';
import { emptyHistogram } from '../../shared/latency-histogram.js';

const T0 = Date.parse('2026-11-24T00:00:00.000Z');
const S = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

function rollout(ids: string[], request: RolloutRequest): RolloutRecord {
  const { strategy, options } = resolveOptions(request);
  const devices: RolloutRecord['devices'] = {};
  planBatches(ids, strategy, options).forEach((b, batch) => b.forEach((id) => (devices[id] = { batch, from: 1, to: 2, state: 'waiting', movedAt: null, deadline: null, doneAt: null, error: null })));
  return {
    id: 1, service: 'iris', kind: 'update', revision: 2, fromRevision: 1, strategy, options, phase: 'running', reason: null,
    batchCount: Object.values(devices).reduce((n, d) => Math.max(n, d.batch + 1), 0), batch: 0, soakUntil: null, rolledBackBy: null, rollbackOf: null, devices,
    createdAt: iso(T0), updatedAt: iso(T0), finishedAt: null, createdBy: null,
  };
}

const figure = (g: Partial<RolloutGate> & Pick<RolloutGate, 'name' | 'threshold'>): RolloutGate => ({ value: null, baseline: null, ok: null, requests: 0, checkedAt: iso(T0), batch: 0, ...g });

test('metric gates: the schema names exactly the evaluation metrics; thresholds parse', (t) => {
  for (const m of EVAL_METRIC_NAMES) t.regex(`${m}>=0.5`, new RegExp(GATE_METRIC_PATTERN));
  t.notRegex('f1>=0.5', new RegExp(GATE_METRIC_PATTERN));
  t.deepEqual(parseMetricGate('accuracy>=0.9'), { metric: 'accuracy', op: '>=', threshold: 0.9 });
  t.deepEqual(parseMetricGate('mae<1.25'), { metric: 'mae', op: '<', threshold: 1.25 });
  t.throws(() => parseMetricGate('accuracy=0.9'));
});

test('the configured gates in check order, thresholds as given; minRequests defaults at the hub', (t) => {
  const { options } = resolveOptions({ gates: { metric: 'accuracy>=0.9', p95: '250ms', errorRate: '1%', p95Ratio: 1.5 } });
  t.is(options.gates?.minRequests, 20);
  t.deepEqual(configuredGates(options.gates), [
    { name: 'error-rate', threshold: '1%' },
    { name: 'p95', threshold: '250ms' },
    { name: 'p95-ratio', threshold: '1.5' },
    { name: 'metric', threshold: 'accuracy>=0.9' },
  ]);
  t.deepEqual(configuredGates(undefined), []);
  t.is(resolveOptions({}).options.gates, undefined);
});

test('request problems: no gate at all, an output without a metric, a p95 beyond the longest duration', (t) => {
  t.is(rolloutRequestProblem({ gates: { minRequests: 5 } }, 'body.rollout'), 'body.rollout.gates: give at least one of errorRate, p95, p95Ratio, metric');
  t.is(rolloutRequestProblem({ gates: { p95: '1s', metricOutput: '/y' } }, 'body.rollout'), 'body.rollout.gates.metricOutput: only with gates.metric');
  t.is(rolloutRequestProblem({ gates: { p95: '31d' } }, 'r'), "r.gates.p95: must be below 10000ms (the latency histogram's last finite bound), not 31d");
  t.is(rolloutRequestProblem({ gates: { metric: 'mae<=0.5', metricOutput: '/y' } }, 'r'), null);
});

test('request problems: a metric without its output, an output that is no JSON pointer, a p95 the histogram cannot show, an error rate above 100%', (t) => {
  t.regex(rolloutRequestProblem({ gates: { metric: 'mae<=0.5' } }, 'body.rollout')!, /^body\.rollout\.gates\.metricOutput: required with gates\.metric/);
  t.regex(rolloutRequestProblem({ gates: { metric: 'mae<=0.5', metricOutput: '/a~2b' } }, 'body.rollout')!, /^body\.rollout\.gates\.metricOutput: "\/a~2b" is not a JSON pointer: ~ must be followed by 0 or 1$/);
  t.is(rolloutRequestProblem({ gates: { metric: 'mae<=0.5', metricOutput: '/a~1b/0' } }, 'r'), null);
  t.is(rolloutRequestProblem({ gates: { p95: '10s' } }, 'body.rollout'), "body.rollout.gates.p95: must be below 10000ms (the latency histogram's last finite bound), not 10s");
  t.is(rolloutRequestProblem({ gates: { p95: '9999ms' } }, 'r'), null);
  t.regex('100%', new RegExp(ERROR_RATE_PATTERN));
  t.regex('99.5%', new RegExp(ERROR_RATE_PATTERN));
  t.regex('100.0%', new RegExp(ERROR_RATE_PATTERN));
  t.notRegex('100.5%', new RegExp(ERROR_RATE_PATTERN));
  t.notRegex('101%', new RegExp(ERROR_RATE_PATTERN));
});

test('breach reasons name the metric, the threshold and the measured value', (t) => {
  t.is(breachReason(figure({ name: 'p95', threshold: '250ms', value: 812.4, baseline: 80, ok: false, requests: 40 })), 'p95 812ms > 250ms (old revision 80ms)');
  t.is(breachReason(figure({ name: 'p95', threshold: '250ms', value: 812.4, ok: false })), 'p95 812ms > 250ms');
  t.is(breachReason(figure({ name: 'error-rate', threshold: '1%', value: 0.3, ok: false, requests: 40 })), 'error rate 30.0% > 1% (40 requests)');
  t.is(breachReason(figure({ name: 'p95-ratio', threshold: '1.5', value: 10, baseline: 80, ok: false })), 'p95 ratio 10 > 1.5 (new revision 800ms, old revision 80ms)');
  t.is(breachReason(figure({ name: 'metric', threshold: 'accuracy>=0.9', value: 0.8235, ok: false, requests: 17 })), 'accuracy 0.8235 < 0.9 (17 labelled answers)');
  t.is(breachReason(figure({ name: 'metric', threshold: 'mae<0.5', value: 0.5, ok: false, requests: 3 })), 'mae 0.5 >= 0.5 (3 labelled answers)');
});

test('recorded gates judge only the batch\'s figures measured after its soak; they wait, ask again now and then, and fail at the device timeout', (t) => {
  const r = rollout(['d1', 'd2'], { strategy: 'canary', canary: '1', deviceTimeout: '60s', gates: { p95: '250ms' } });
  const [gate] = recordedGates(r);
  const since = T0 + 10 * S;
  t.deepEqual(gate!.check(r, 0, since, since, 0), { ok: null, measure: true }, 'no figures yet');
  t.deepEqual(gate!.check(r, 0, since + 60 * S, since, 0), { ok: false, reason: 'no figures within 60s after the soak' }, 'never measured: it fails at the device timeout too');
  t.deepEqual(gate!.check(r, 0, since + 60 * S, since, since + 70 * S), { ok: null, measure: true }, 'not while agents may still deliver what they buffered (the hub just started)');
  r.gates = [figure({ name: 'p95', threshold: '250ms', value: 100, ok: true, checkedAt: iso(since - 1) })];
  t.deepEqual(gate!.check(r, 0, since, since, 0), { ok: null, measure: true }, 'measured before the soak ended');
  r.gates = [figure({ name: 'p95', threshold: '250ms', value: 100, ok: true, checkedAt: iso(since), batch: 1 })];
  t.deepEqual(gate!.check(r, 0, since, since, 0), { ok: null, measure: true }, 'another batch');
  r.gates = [figure({ name: 'p95', threshold: '250ms', value: 100, ok: true, checkedAt: iso(since) })];
  t.deepEqual(gate!.check(r, 0, since, since, 0), { ok: true });
  r.gates = [figure({ name: 'p95', threshold: '250ms', value: 400, ok: false, checkedAt: iso(since) })];
  t.deepEqual(gate!.check(r, 0, since, since, 0), { ok: false, reason: 'p95 400ms > 250ms' });
  r.gates = [figure({ name: 'p95', threshold: '250ms', value: 90, requests: 3, checkedAt: iso(since) })];
  t.deepEqual(gate!.check(r, 0, since + 1, since, 0), { ok: null, measure: false }, 'just measured');
  t.deepEqual(gate!.check(r, 0, since + MEASURE_EVERY_MS, since, 0), { ok: null, measure: true });
  t.deepEqual(gate!.check(r, 0, since + 60 * S, since, 0), { ok: null, measure: true }, 'at the timeout, figures from before it ask for one more measurement');
  r.gates = [figure({ name: 'p95', threshold: '250ms', value: 90, requests: 3, checkedAt: iso(since + 60 * S) })];
  t.deepEqual(gate!.check(r, 0, since + 60 * S, since, 0), { ok: false, reason: '3 requests within 60s after the soak, fewer than the 20 it needs' }, 'measured at the timeout: it fails');
  t.like(gate!.check(r, 0, since + 60 * S, since, since + 61 * S), { ok: null }, 'measured before agents could deliver buffered telemetry: not final');
  t.deepEqual(recordedGates({ ...r, kind: 'rollback' }), [], 'a rollback is never gated');
  t.deepEqual(recordedGates(rollout(['d1'], {})), []);
});

/** A metrics record: `n` requests of `ms` each on one device, `errors` of them 5xx, in the interval ending at `ts`. */
function metrics(device: string, ts: number, n: number, ms: number, errors = 0, service = 'iris') {
  const h = emptyHistogram();
  const bucket = h.boundsMs.findIndex((b) => ms <= b);
  h.counts[bucket === -1 ? h.boundsMs.length : bucket] = n;
  h.sumMs = n * ms;
  const responses = { '2xx': n - errors, '3xx': 0, '4xx': 0, '5xx': errors };
  return { kind: 'metrics', ts, device, batch: `${device}/${ts}`, data: { services: { [service]: { requests: n, responses, latencyMs: h } } } };
}

function fakeArchive(records: ReturnType<typeof metrics>[]): GateSources['archive'] {
  return {
    read: (q) =>
      (async function* () {
        for (const r of records) if (r.kind === q.kind && (q.device === undefined || r.device === q.device) && r.ts >= q.since.getTime() && (q.until === undefined || r.ts < q.until.getTime())) yield r as never;
      })(),
  };
}

test('measured: exactly the moved healthy devices, each since it became healthy; the old revision from the devices not moved, same window', async (t) => {
  const r = rollout(['d1', 'd2', 'd3'], { strategy: 'batches', batchSize: '1', gates: { errorRate: '5%', p95: '250ms', p95Ratio: 2, minRequests: 10 } });
  Object.assign(r.devices.d1!, { state: 'healthy', movedAt: iso(T0), doneAt: iso(T0 + 10 * S) });
  const archive = fakeArchive([
    metrics('d1', T0 + 5 * S, 100, 1000, 100), // before d1 was healthy on the new revision: not counted
    metrics('d1', T0 + 11 * S, 30, 400, 3),
    metrics('d1', T0 + 12 * S, 10, 400, 0, 'other'), // another service
    metrics('d2', T0 + 11 * S, 40, 40), // not moved: the old revision
    metrics('d2', T0 + 9 * S, 40, 2000), // before the window
    metrics('d3', T0 + 12 * S, 20, 40),
    metrics('d1', T0 + 30 * S, 30, 400), // after `now`
  ]);
  const figures = await gateMeter({ archive })(r, T0 + 20 * S);
  const at = iso(T0 + 20 * S);
  t.is(figures.length, 3);
  t.like(figures[0], { name: 'error-rate', threshold: '5%', value: 0.1, ok: false, requests: 30, checkedAt: at, batch: 0, baseline: null });
  t.like(figures[1], { name: 'p95', threshold: '250ms', ok: false, requests: 30 });
  t.true(figures[1]!.value! > 250 && figures[1]!.value! <= 500, `p95 ${figures[1]!.value} is in the 250–500 ms bucket`);
  t.true(figures[1]!.baseline! > 25 && figures[1]!.baseline! <= 50, `old revision ${figures[1]!.baseline}`);
  t.like(figures[2], { name: 'p95-ratio', threshold: '2', ok: false });
  t.is(figures[2]!.value, figures[1]!.value! / figures[1]!.baseline!);
});

test('measured: fewer requests than minRequests wait (ok null); no device left on the old revision passes the ratio', async (t) => {
  const r = rollout(['d1'], { gates: { errorRate: '5%', p95Ratio: 2, minRequests: 10 } });
  Object.assign(r.devices.d1!, { state: 'healthy', movedAt: iso(T0), doneAt: iso(T0) });
  const few = await gateMeter({ archive: fakeArchive([metrics('d1', T0 + S, 4, 10, 4)]) })(r, T0 + 2 * S);
  t.like(few[0], { name: 'error-rate', value: 1, ok: null, requests: 4 });
  t.like(few[1], { name: 'p95-ratio', value: null, ok: null });
  const enough = await gateMeter({ archive: fakeArchive([metrics('d1', T0 + S, 40, 10)]) })(r, T0 + 2 * S);
  t.like(enough[0], { value: 0, ok: true });
  t.like(enough[1], { name: 'p95-ratio', value: null, ok: true });
});

test('measured: the metric gate compares the answer at the pointer with the label, for the moved devices and the new revision only', async (t) => {
  const r = rollout(['d1', 'd2'], { strategy: 'canary', canary: '1', gates: { metric: 'accuracy>=0.75', metricOutput: '/class', minRequests: 4 } });
  Object.assign(r.devices.d1!, { state: 'healthy', movedAt: iso(T0), doneAt: iso(T0 + 10 * S) });
  const asked: unknown[] = [];
  const row = (time: number, predicted: string | null, label: string) => ({ requestId: 'x', time: iso(time), device: 'd1', model: 'iris:2', revision: 2, input: {}, output: predicted === null ? null : { class: predicted }, label });
  const labelled = {
    rows(filter: unknown) {
      asked.push(filter);
      return (async function* () {
        yield row(T0 + 5 * S, 'a', 'b'); // before the device was healthy
        yield row(T0 + 11 * S, null, 'a'); // an inline example: no answer to compare
        for (const [p, l] of [['a', 'a'], ['b', 'b'], ['a', 'b'], ['c', 'c'], ['a', 'a']]) yield row(T0 + 12 * S, p!, l!);
      })();
    },
  };
  const [metric] = await gateMeter({ archive: fakeArchive([]), labelled })(r, T0 + 20 * S);
  t.deepEqual(asked, [{ service: 'iris', since: iso(T0 + 10 * S), labelled: true, devices: ['d1'], revision: 2 }]);
  t.like(metric, { name: 'metric', threshold: 'accuracy>=0.75', value: 0.8, ok: true, requests: 5 });
  const strict = { ...r, options: { ...r.options, gates: { ...r.options.gates!, metric: 'accuracy>=0.9' } } };
  t.like((await gateMeter({ archive: fakeArchive([]), labelled })(strict, T0 + 20 * S))[0], { value: 0.8, ok: false });
  t.like((await gateMeter({ archive: fakeArchive([]) })(r, T0 + 20 * S))[0], { value: null, ok: null, requests: 0 }, 'no labelled data: it waits');
});

test('measured: only the current batch\'s devices, so a later batch must bring its own requests', async (t) => {
  const r = rollout(['d1', 'd2', 'd3'], { strategy: 'canary', canary: '1', batchSize: '1', gates: { errorRate: '5%', minRequests: 10 } });
  Object.assign(r.devices.d1!, { state: 'healthy', movedAt: iso(T0), doneAt: iso(T0 + S) });
  Object.assign(r.devices.d2!, { state: 'healthy', movedAt: iso(T0 + 20 * S), doneAt: iso(T0 + 21 * S) });
  r.batch = 1;
  const archive = fakeArchive([metrics('d1', T0 + 25 * S, 500, 10), metrics('d2', T0 + 25 * S, 3, 10, 3)]);
  const [errors] = await gateMeter({ archive })(r, T0 + 30 * S);
  t.like(errors, { name: 'error-rate', value: 1, requests: 3, ok: null, batch: 1 }, 'the canary\'s 500 requests do not count for batch 2');
});

test('measured: the old revision\'s baseline from at most BASELINE_SAMPLE devices, its request count kept apart', async (t) => {
  const ids = Array.from({ length: 30 }, (_, i) => `d${String(i).padStart(2, '0')}`);
  const r = rollout(ids, { strategy: 'canary', canary: '1', gates: { p95Ratio: 2, minRequests: 10 } });
  Object.assign(r.devices.d00!, { state: 'healthy', movedAt: iso(T0), doneAt: iso(T0) });
  const records = ids.map((id) => metrics(id, T0 + S, id === 'd00' ? 50 : 1, 40));
  const read: string[] = [];
  const archive = fakeArchive(records);
  const counting: GateSources['archive'] = { read: (q) => (read.push(q.device!), archive.read(q)) };
  const [ratio] = await gateMeter({ archive: counting })(r, T0 + 2 * S);
  t.is(read.filter((d) => d !== 'd00').length, BASELINE_SAMPLE);
  t.like(ratio, { name: 'p95-ratio', value: 1, baselineRequests: BASELINE_SAMPLE, requests: 50, ok: true });
  const few = await gateMeter({ archive })({ ...r, options: { ...r.options, gates: { ...r.options.gates!, minRequests: 40 } } }, T0 + 2 * S);
  t.like(few[0], { value: null, ok: null, requests: 50, baselineRequests: BASELINE_SAMPLE, baseline: null }, 'an old revision with too few requests: no baseline, it waits');
});

test('measured: labels and answers mae cannot use do not stop the measurement; one gate\'s failure keeps the others', async (t) => {
  const r = rollout(['d1'], { gates: { errorRate: '1%', metric: 'mae<=0.5', metricOutput: '/y', minRequests: 1 } });
  Object.assign(r.devices.d1!, { state: 'healthy', movedAt: iso(T0), doneAt: iso(T0) });
  const row = (output: unknown, label: unknown) => ({ requestId: 'x', time: iso(T0 + S), device: 'd1', model: 'm:2', revision: 2, input: {}, output, label });
  const labelled = {
    rows: () =>
      (async function* () {
        yield row({ y: 1 }, 1.5);
        yield row({ y: 2 }, 'two'); // a label that is no number: left out
        yield row({ z: 2 }, 2); // no answer at /y: a miss
        yield row({ y: 'big' }, 2); // an answer that is no number: a miss
      })(),
  };
  const broken: GateSources['archive'] = {
    read: () =>
      (async function* () {
        throw new Error('day file unreadable');
      })(),
  };
  const err = await t.throwsAsync(gateMeter({ archive: broken, labelled })(r, T0 + 2 * S), { instanceOf: GateMeasureError, message: /could not measure gate error-rate: day file unreadable/ });
  t.deepEqual(err!.figures.map((f) => f.name), ['metric']);
  t.like(err!.figures[0], { value: 0.5, requests: 1, misses: 2, ok: true });
});

function parse(args: string[]): RolloutRequest | undefined {
  const command = addRolloutOptions(new Command().exitOverride());
  command.parse(args, { from: 'user' });
  return rolloutRequest(command.opts<RolloutFlags>());
}

test('CLI: --gate-* flags make RolloutRequest.gates; bad values and tuning flags alone are refused', (t) => {
  t.deepEqual(parse(['--gate-error-rate', '1%', '--gate-p95', '250ms', '--gate-p95-ratio', '1.5', '--gate-min-requests', '50', '--gate-metric', 'accuracy>=0.9', '--gate-output', '/y']), {
    gates: { errorRate: '1%', p95: '250ms', p95Ratio: 1.5, minRequests: 50, metric: 'accuracy>=0.9', metricOutput: '/y' },
  });
  t.deepEqual(parse(['--strategy', 'canary', '--gate-p95', '1s']), { strategy: 'canary', gates: { p95: '1s' } });
  t.is(parse([]), undefined);
  t.throws(() => parse(['--gate-error-rate', '1']), { message: /--gate-error-rate "1": expected e\.g\. 1%/ });
  t.throws(() => parse(['--gate-metric', 'f1>0.5']), { message: /--gate-metric/ });
  t.throws(() => parse(['--gate-min-requests', '1.5', '--gate-p95', '1s']), { message: /whole number/ });
  t.throws(() => parse(['--gate-p95-ratio', '0', '--gate-p95', '1s']), { message: /a number > 0/ });
  t.throws(() => parse(['--gate-min-requests', '5']), { message: /give one of --gate-error-rate/ });
  t.throws(() => parse(['--gate-p95', '1s', '--gate-output', '/y']), { message: /--gate-output is the field --gate-metric reads/ });
  t.throws(() => parse(['--gate-metric', 'mae<=0.5']), { message: /--gate-metric needs --gate-output/ });
  t.throws(() => parse(['--gate-metric', 'mae<=0.5', '--gate-output', '/a~']), { message: /--gate-output: "\/a~" is not a JSON pointer/ });
  t.throws(() => parse(['--gate-p95', '10s']), { message: /--gate-p95 "10s": must be below 10000ms/ });
  t.throws(() => parse(['--gate-error-rate', '100.5%']), { message: /--gate-error-rate "100.5%"/ });
  t.deepEqual(parse(['--gate-error-rate', '100%']), { gates: { errorRate: '100%' } });
});

test('breach and timeout reasons: a missing old-revision baseline names the old revision and its requests', (t) => {
  const gates = resolveOptions({ gates: { p95Ratio: 1.5 } }).options.gates!;
  t.is(shortReason(figure({ name: 'p95-ratio', threshold: '1.5', requests: 500, baselineRequests: 3 }), gates, '60s'), 'old revision: 3 requests within 60s after the soak, fewer than the 20 it needs to compare with');
  t.is(shortReason(figure({ name: 'p95-ratio', threshold: '1.5', requests: 5, baselineRequests: 300 }), gates, '60s'), '5 requests within 60s after the soak, fewer than the 20 it needs');
  const metric = resolveOptions({ gates: { metric: 'mae<=1', metricOutput: '/y' } }).options.gates!;
  t.is(shortReason(figure({ name: 'metric', threshold: 'mae<=1', requests: 2, misses: 4 }), metric, '60s'), '2 labelled answers (and 4 without a usable value at /y) within 60s after the soak, fewer than the 20 it needs');
});
