/**
 * Feedback at the agent, piece by piece: the body's two shapes (agent/gateway/feedback.ts), the
 * service's input schema from its OpenAPI document (agent/feedback/input-schema.ts), the group
 * commit into the outbox (agent/feedback/feedback-queue.ts), and the outbox's feedback lane, which
 * refuses when full rather than dropping a label it accepted (agent/telemetry/outbox.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { FeedbackQueue } from '../../agent/feedback/feedback-queue.js';
import { InputSchemas, inputCheck } from '../../agent/feedback/input-schema.js';
import { parseFeedback } from '../../agent/gateway/feedback.js';
import { GatewayError } from '../../agent/gateway/errors.js';
import { LaneFullError, Outbox, type Batch } from '../../agent/telemetry/outbox.js';
import { ErrorCodes } from '../../shared/errors.js';
import { decodeMessage, MAX_MESSAGE_BYTES, type FeedbackItem } from '../../shared/protocol.js';

const logger = pino({ level: 'silent' });

/** As both runtimes write it: OpenAPI 3.1, the app's input schema under components, its own refs re-rooted there. */
const doc = {
  openapi: '3.1.0',
  paths: { '/score': { post: { requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ScoreInput' } } } } } } },
  components: {
    schemas: {
      ScoreInput: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        required: ['features'],
        additionalProperties: false,
        properties: { features: { type: 'array', items: { $ref: '#/components/schemas/ScoreInput/$defs/x' }, minItems: 2, maxItems: 2 } },
        $defs: { x: { type: 'number' } },
      },
    },
  },
};

function refusal(t: ExecutionContext, fn: () => unknown, message: RegExp): void {
  const err = t.throws(fn, { instanceOf: GatewayError });
  t.is(err?.status, 400);
  t.is(err?.code, 'GATEWAY_E_FEEDBACK_INVALID');
  t.regex(err?.message ?? '', message);
}

const body = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

test('the body is {requestId, label} or {input, label}; anything else is refused, naming what is wrong', (t) => {
  t.deepEqual(parseFeedback(body({ requestId: 'r-1', label: 'setosa' })), { requestId: 'r-1', label: 'setosa' });
  t.deepEqual(parseFeedback(body({ input: { features: [1, 2] }, label: { y: 3 } })), { input: { features: [1, 2] }, label: { y: 3 } });
  t.deepEqual(parseFeedback(body({ requestId: 'r-1', label: false })), { requestId: 'r-1', label: false }, 'any JSON value but null');
  refusal(t, () => parseFeedback(body('{"requestId":')), /not JSON/);
  refusal(t, () => parseFeedback(body([1])), /JSON object/);
  refusal(t, () => parseFeedback(body({ requestId: 'r-1' })), /^label: is required/);
  refusal(t, () => parseFeedback(body({ requestId: 'r-1', label: null })), /^label: is required \(any JSON value but null\)/);
  refusal(t, () => parseFeedback(body({ requestId: 'r-1', input: {}, label: 1 })), /either requestId or input, not both/);
  refusal(t, () => parseFeedback(body({ label: 1 })), /^requestId or input: is required/);
  refusal(t, () => parseFeedback(body({ requestId: 'has space', label: 1 })), /^requestId: must be/);
  refusal(t, () => parseFeedback(body({ requestId: 'x'.repeat(129), label: 1 })), /^requestId: must be/);
  refusal(t, () => parseFeedback(body({ requestId: 'r', label: 1, score: 2 })), /^score: is not a known field/);
  refusal(t, () => parseFeedback(body(`{"label":${'['.repeat(100)}${']'.repeat(100)},"requestId":"r"}`)), /nested deeper than 64/);
});

test("an inline input is checked against the service's schema from its OpenAPI document, naming the field", (t) => {
  const check = inputCheck(doc);
  t.is(check({ features: [1.5, 2] }), undefined);
  t.is(check({ features: [1.5, 'x'] }), 'input.features.1: must be number');
  t.is(check({}), 'input.features: is required');
  t.is(check({ features: [1, 2], extra: 1 }), 'input.extra: is not a known field');
  t.is(check([1]), 'input: must be object');
});

test('a document without a /score request body schema takes any JSON object', (t) => {
  const check = inputCheck({ openapi: '3.1.0', paths: {} });
  t.is(check({ anything: [1] }), undefined);
  t.is(check('text'), 'input: must be object');
});

test('the schema is fetched once per service revision; a failed fetch is tried again', async (t) => {
  const fetched: number[] = [];
  let fail = true;
  const schemas = new InputSchemas(async (port) => {
    fetched.push(port);
    if (fail) throw new Error('connection refused');
    return doc;
  });
  await t.throwsAsync(schemas.check('iris', 1, 9001), { message: 'connection refused' });
  fail = false;
  const check = await schemas.check('iris', 1, 9001);
  await schemas.check('iris', 1, 9002);
  t.is(check({ features: [1, 'x'] }), 'input.features.1: must be number');
  t.deepEqual(fetched, [9001, 9001], 'once after the failure, then from the cache');
  await schemas.check('iris', 2, 9003);
  t.deepEqual(fetched, [9001, 9001, 9003], 'a new revision is fetched');
});

const item = (requestId: string, label: unknown = 'x'): FeedbackItem => ({ ts: new Date(0).toISOString(), requestId, service: 'iris', revision: 1, models: [], label });

test('labels that arrive while an append runs go together in the next batch; each add resolves once its batch is appended', async (t) => {
  const appended: Batch[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let n = 0;
  const queue = new FeedbackQueue({
    append: async (b) => {
      if (appended.push(b) === 1) await gate;
    },
    nextId: () => `f.${++n}`,
    logger,
  });
  const first = queue.add(item('a'));
  let firstDone = false;
  void first.then(() => (firstDone = true));
  const rest = ['b', 'c', 'd'].map((id) => queue.add(item(id)));
  await new Promise((r) => setImmediate(r));
  t.false(firstDone, 'not resolved before its append is');
  release();
  await Promise.all([first, ...rest]);
  t.is(appended.length, 2);
  const decoded = appended.map((b) => decodeMessage('telemetry', b.bytes));
  t.deepEqual(
    decoded.map((d) => (d.ok && d.value.kind === 'feedback' ? d.value.items.map((i) => i.requestId) : [])),
    [['a'], ['b', 'c', 'd']],
  );
  t.deepEqual(appended.map((b) => [b.id, b.lane]), [['f.1', 'feedback'], ['f.2', 'feedback']]);
});

test('a batch stays within one message: many large labels go in several', async (t) => {
  const appended: Batch[] = [];
  let n = 0;
  const queue = new FeedbackQueue({ append: async (b) => void appended.push(b), nextId: () => `f.${++n}`, logger });
  await Promise.all(Array.from({ length: 12 }, (_, i) => queue.add(item(`r${i}`, 'y'.repeat(60_000)))));
  t.true(appended.length >= 3);
  t.true(appended.every((b) => b.bytes.length <= MAX_MESSAGE_BYTES));
  t.is(appended.map((b) => decodeMessage('telemetry', b.bytes)).reduce((s, d) => s + (d.ok && d.value.kind === 'feedback' ? d.value.items.length : 0), 0), 12);
});

test("an append's failure rejects exactly the labels of that batch", async (t) => {
  let n = 0;
  const queue = new FeedbackQueue({
    append: async () => {
      if (++n === 1) throw new LaneFullError('feedback', 1);
    },
    nextId: () => `f.${n + 1}`,
    logger,
  });
  await t.throwsAsync(queue.add(item('a')), { instanceOf: LaneFullError });
  await t.notThrowsAsync(queue.add(item('b')));
});

async function outboxDir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'feedback-outbox-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('the feedback lane refuses a batch past its quota and never drops one it took; metrics and captures still drop', async (t) => {
  const dir = await outboxDir(t);
  const small = 64 * 1024;
  const limits = { metrics: small + 200, capture: small + 200, feedback: 2 * (small + 200) };
  const outbox = await Outbox.open(dir, { limits, maxBatchBytes: small, logger });
  const payload = Buffer.alloc(small - 100, 1);
  await outbox.append({ id: 'f1', lane: 'feedback', bytes: payload });
  await outbox.append({ id: 'f2', lane: 'feedback', bytes: payload });
  const err = await t.throwsAsync(outbox.append({ id: 'f3', lane: 'feedback', bytes: payload }), { instanceOf: LaneFullError });
  t.is(err?.code, ErrorCodes.AGENT_TELEMETRY_LANE_FULL);
  t.is(outbox.size().feedback.count, 2, 'both accepted batches kept');
  await outbox.append({ id: 'c1', lane: 'capture', bytes: payload });
  await outbox.append({ id: 'c2', lane: 'capture', bytes: payload });
  t.deepEqual(outbox.dropped(), { metrics: 0, capture: 1 }, 'captures drop as before; feedback has no drop count');
  await outbox.ack('f1');
  await t.notThrowsAsync(outbox.append({ id: 'f3', lane: 'feedback', bytes: payload }), 'room again once the hub took one');
  await outbox.close();
  // A lower quota at the next start keeps every label (they were promised), and refuses new ones.
  const reopened = await Outbox.open(dir, { limits: { ...limits, feedback: small + 200 }, maxBatchBytes: small, logger });
  t.teardown(() => reopened.close());
  t.is(reopened.size().feedback.count, 2);
  await t.throwsAsync(reopened.append({ id: 'f4', lane: 'feedback', bytes: Buffer.alloc(10) }), { instanceOf: LaneFullError });
});

test('the outbox hands out metrics, then labels, then captures', async (t) => {
  const outbox = await Outbox.open(await outboxDir(t), { limits: { metrics: 1 << 20, capture: 1 << 20 }, maxBatchBytes: 1024, logger });
  t.teardown(() => outbox.close());
  await outbox.append({ id: 'c', lane: 'capture', bytes: Buffer.from('c') });
  await outbox.append({ id: 'f', lane: 'feedback', bytes: Buffer.from('f') });
  await outbox.append({ id: 'm', lane: 'metrics', bytes: Buffer.from('m') });
  const order: string[] = [];
  for (let b = await outbox.next(); b; b = await outbox.next()) order.push(b.id);
  t.deepEqual(order, ['m', 'f', 'c']);
});

test('a number JSON cannot carry (1e400 parses as Infinity) is refused anywhere in the body, naming the field', (t) => {
  refusal(t, () => parseFeedback(body('{"requestId":"r-1","label":1e400}')), /^label: must be a finite number/);
  refusal(t, () => parseFeedback(body('{"requestId":"r-1","label":{"scores":[1,-1e999]}}')), /^label\.scores\.1: must be a finite number/);
  refusal(t, () => parseFeedback(body('{"input":{"x":1e400},"label":1}')), /^input\.x: must be a finite number/);
  t.deepEqual(parseFeedback(body('{"input":{"x":1e300},"label":-0.5}')), { input: { x: 1e300 }, label: -0.5 });
});
