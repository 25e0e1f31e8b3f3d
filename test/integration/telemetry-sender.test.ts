/**
 * The telemetry sender (agent/telemetry/telemetry-sender.ts) over a real outbox in a temp dir and an
 * in-memory link whose publishes the test settles by hand, on a manual clock: a batch leaves the
 * outbox only after its PUBACK, failures and hangs keep it queued, nothing is taken while offline,
 * the in-flight bound holds, and captures never take the slot metrics need.
 */
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { Outbox, MAX_ID_BYTES, type Lane } from '../../agent/telemetry/outbox.js';
import { encodeBatch, HEADER_BYTES } from '../../agent/telemetry/outbox-file.js';
import { TelemetrySender, type TelemetryLink } from '../../agent/telemetry/telemetry-sender.js';
import { encodeMessage, type TelemetryBatch } from '../../shared/protocol.js';
import { tempDir } from '../helpers/edgeml-process.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { capturesBatch, metricsBatch } from '../helpers/telemetry-batches.js';
import { waitFor } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });
const BACKOFF = { initialMs: 1000, maxMs: 1000, factor: 1 };

interface Publish {
  id: string;
  resolve(): void;
  reject(err: Error): void;
}

/** A link whose publishes wait until the test acknowledges or fails them. */
class HandLink implements TelemetryLink {
  up = true;
  /** Every publish, in order, settled or not. */
  readonly publishes: Publish[] = [];
  readonly #open = new Set<Publish>();

  connected(): boolean {
    return this.up;
  }

  publish(_channel: 'telemetry', message: TelemetryBatch): Promise<void> {
    return new Promise((resolve, reject) => {
      const p: Publish = {
        id: message.id,
        resolve: () => {
          this.#open.delete(p);
          resolve();
        },
        reject: (err) => {
          this.#open.delete(p);
          reject(err);
        },
      };
      this.publishes.push(p);
      this.#open.add(p);
    });
  }

  /** Publishes not settled yet. */
  open(): Publish[] {
    return [...this.#open];
  }

  openIds(): string[] {
    return this.open().map((p) => p.id);
  }
}

/** `laneBytes`: each lane's outbox quota (with `maxBatchBytes` under it); default 4 MiB. */
async function setup(t: ExecutionContext, opts: { maxInFlight?: number; publishTimeoutMs?: number; laneBytes?: number } = {}) {
  const { laneBytes, ...senderOpts } = opts;
  const limit = laneBytes ?? 4 * 2 ** 20;
  const outbox = await Outbox.open(await tempDir(t, 'edgeml-sender-'), { limits: { metrics: limit, capture: limit }, maxBatchBytes: limit - HEADER_BYTES - MAX_ID_BYTES, logger });
  const clock = new ManualClock(0);
  const link = new HandLink();
  const sender = new TelemetrySender({ outbox, clock, logger, backoff: BACKOFF, ...senderOpts });
  t.teardown(async () => {
    await sender.close();
    await outbox.close();
  });
  const append = async (id: string, lane: Lane = 'metrics') => {
    const batch = lane === 'metrics' ? metricsBatch({ id }) : capturesBatch({ id });
    await outbox.append({ id, lane, bytes: encodeMessage('telemetry', batch) });
    sender.wake();
  };
  const waiting = () => outbox.size().metrics.count + outbox.size().capture.count;
  return { outbox, clock, link, sender, append, waiting };
}

/** Lets pending outbox reads and sender passes run, without any sender timer firing. */
const quiet = () => new Promise((r) => setTimeout(r, 100));

test('a batch leaves the outbox only once its publish resolved (PUBACK)', async (t) => {
  const { link, sender, append, waiting } = await setup(t);
  await append('m-1');
  await append('m-2');
  sender.start(link);
  await waitFor('both published', () => link.openIds().length === 2);
  await quiet();
  t.is(waiting(), 2, 'published but not acknowledged: still queued');
  link.open().find((p) => p.id === 'm-2')!.resolve();
  await waitFor('m-2 acked', () => waiting() === 1);
  link.open()[0]!.resolve();
  await waitFor('all acked', () => waiting() === 0);
  t.deepEqual(link.publishes.map((p) => p.id), ['m-1', 'm-2'], 'each published once');
});

test('a rejected publish acks nothing; the batch goes again after the backoff', async (t) => {
  const { link, sender, append, waiting, clock } = await setup(t);
  await append('m-1');
  sender.start(link);
  await waitFor('published', () => link.openIds().length === 1);
  link.open()[0]!.reject(new Error('client disconnecting'));
  await quiet();
  t.is(waiting(), 1);
  t.is(link.publishes.length, 1, 'no retry before the backoff');
  await append('m-2');
  await quiet();
  t.is(link.publishes.length, 1, 'nothing is taken during the backoff, appends included');
  clock.advance(BACKOFF.maxMs);
  await waitFor('both go out after the backoff', () => link.openIds().length === 2);
  t.deepEqual(link.openIds().sort(), ['m-1', 'm-2']);
  for (const p of link.open()) p.resolve();
  await waitFor('all acked', () => waiting() === 0);
});

test('nothing is taken while disconnected; a (re)connect resumes at once', async (t) => {
  const { link, sender, append, waiting } = await setup(t);
  link.up = false;
  sender.start(link);
  await append('m-1');
  await append('m-2');
  await quiet();
  t.is(link.publishes.length, 0);
  link.up = true;
  sender.connected();
  await waitFor('published after connect', () => link.openIds().length === 2);
  for (const p of link.open()) p.resolve();
  await waitFor('all acked', () => waiting() === 0);
});

test('at most maxInFlight publishes wait for their PUBACK at once; each settled one lets the next go', async (t) => {
  const { link, sender, append, waiting } = await setup(t, { maxInFlight: 3 });
  for (let i = 1; i <= 7; i++) await append(`m-${i}`);
  sender.start(link);
  await waitFor('three in flight', () => link.openIds().length === 3);
  await quiet();
  t.deepEqual(link.openIds(), ['m-1', 'm-2', 'm-3'], 'oldest first, and no more than three');
  link.open()[0]!.resolve();
  await waitFor('the fourth goes out', () => link.openIds().includes('m-4'));
  t.is(link.openIds().length, 3);
  while (waiting() > 0) {
    for (const p of link.open()) p.resolve();
    await quiet();
  }
  t.deepEqual(link.publishes.map((p) => p.id), ['m-1', 'm-2', 'm-3', 'm-4', 'm-5', 'm-6', 'm-7']);
});

test('captures never take the last slot: a metrics batch goes out while captures hang', async (t) => {
  const { link, sender, append, waiting } = await setup(t, { maxInFlight: 3 });
  for (let i = 1; i <= 4; i++) await append(`c-${i}`, 'capture');
  sender.start(link);
  await waitFor('two captures in flight', () => link.openIds().length === 2);
  await quiet();
  t.deepEqual(link.openIds(), ['c-1', 'c-2']);
  await append('m-1');
  await waitFor('the metrics batch goes out', () => link.openIds().includes('m-1'));
  link.open().find((p) => p.id === 'm-1')!.resolve();
  await waitFor('metrics acked', () => waiting() === 4);
  t.deepEqual(link.openIds(), ['c-1', 'c-2'], 'the captures still wait');
});

test('a publish with no PUBACK by its deadline keeps its slot and is not published again; a late PUBACK settles it', async (t) => {
  const { link, sender, append, waiting, clock } = await setup(t, { publishTimeoutMs: 5000 });
  await append('m-1');
  sender.start(link);
  await waitFor('published', () => link.openIds().length === 1);
  const first = link.open()[0]!;
  clock.advance(5000);
  await quiet();
  t.is(waiting(), 1, 'still queued');
  clock.advance(BACKOFF.maxMs);
  await quiet();
  t.is(link.publishes.length, 1, 'mqtt.js still holds it: no second copy');
  first.resolve();
  await waitFor('the late PUBACK acks it', () => waiting() === 0);
  t.is(link.publishes.length, 1);
});

test('a batch the broker would refuse is dropped and counted, and does not block the queue', async (t) => {
  const { link, sender, outbox, append, waiting } = await setup(t);
  await outbox.append({ id: 'bad-1', lane: 'metrics', bytes: Buffer.from('{"v":1,"kind":"metrics"') });
  await append('m-1');
  sender.start(link);
  await waitFor('the good one goes out', () => link.openIds().includes('m-1'));
  t.is(sender.undeliverable(), 1);
  t.deepEqual(link.publishes.map((p) => p.id), ['m-1']);
  link.open()[0]!.resolve();
  await waitFor('all gone', () => waiting() === 0);
});

test('a batch dropped for the quota while its publish is under way is counted once if that publish fails, and not at all if it is acknowledged', async (t) => {
  const fileBytes = encodeBatch('metrics', 'm-1', encodeMessage('telemetry', metricsBatch({ id: 'm-1' }))).length;
  // Room for three batch files: the fourth and fifth appends each drop the oldest, both in flight.
  const { link, sender, outbox, append, waiting, clock } = await setup(t, { maxInFlight: 2, laneBytes: 3 * fileBytes + fileBytes / 2 });
  sender.start(link);
  await append('m-1');
  await append('m-2');
  await waitFor('both in flight', () => link.openIds().length === 2);
  for (const id of ['m-3', 'm-4', 'm-5']) await append(id);
  t.is(waiting(), 3, 'm-1 and m-2 were dropped to make room');
  const publish = (id: string) => link.open().find((p) => p.id === id)!;
  publish('m-1').resolve();
  await waitFor('m-3 takes the freed slot', () => link.openIds().includes('m-3'));
  publish('m-2').reject(new Error('client disconnecting'));
  await quiet();
  clock.advance(BACKOFF.maxMs);
  await waitFor('m-4 goes out after the backoff', () => link.openIds().includes('m-4'));
  await quiet();
  t.deepEqual(outbox.dropped(), { metrics: 1, capture: 0 }, 'm-2 was lost to the quota; m-1 was delivered, not dropped');
  t.deepEqual(link.openIds(), ['m-3', 'm-4'], 'a dropped batch is not sent again');
  for (const p of link.open()) p.resolve();
  await waitFor('m-5 goes out', () => link.openIds().includes('m-5'));
  publish('m-5').resolve();
  await waitFor('all acked', () => waiting() === 0);
  t.deepEqual(outbox.dropped(), { metrics: 1, capture: 0 }, 'counted once');
  t.deepEqual(link.publishes.map((p) => p.id), ['m-1', 'm-2', 'm-3', 'm-4', 'm-5']);
});
