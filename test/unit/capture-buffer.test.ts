/**
 * The capture buffer (agent/telemetry/capture-buffer.ts) on a manual clock: valid batches into the
 * capture lane, cut by size, by count, by age and on close; ids unique; memory bounded while
 * appends fall behind or fail, with the drops counted; and `add` never throws.
 */
import test from 'ava';
import { pino } from 'pino';
import { batchIds } from '../../agent/telemetry/batch-ids.js';
import { CaptureBuffer, type CaptureBufferOptions } from '../../agent/telemetry/capture-buffer.js';
import type { Batch } from '../../agent/telemetry/outbox.js';
import { decodeMessage, MAX_MESSAGE_BYTES, TELEMETRY_BATCH_ID_PATTERN, type CapturesBatch } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { captureSample } from '../helpers/telemetry-batches.js';

const settle = () => new Promise((r) => setImmediate(r));

function setup(opts: Partial<CaptureBufferOptions> = {}) {
  const clock = new ManualClock(Date.parse('2025-03-01T08:00:00.000Z'));
  const appended: Batch[] = [];
  const logs: Array<{ level: number; msg: string }> = [];
  const buffer = new CaptureBuffer({
    append: async (b) => void appended.push(b),
    nextId: batchIds('c'),
    clock,
    logger: pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as { level: number; msg: string }) }),
    flushEveryMs: 5000,
    ...opts,
  });
  const batches = () =>
    appended.map((b) => {
      const decoded = decodeMessage('telemetry', b.bytes);
      if (!decoded.ok || decoded.value.kind !== 'captures') throw new Error(`not a captures batch: ${decoded.ok ? decoded.value.kind : decoded.error}`);
      return { ...b, batch: decoded.value as CapturesBatch };
    });
  return { clock, appended, logs, buffer, batches };
}

/** A sample whose request text makes it about `bytes` long encoded. */
const sized = (bytes: number, n = 0) => captureSample({ latencyMs: n, request: { text: 'x'.repeat(bytes), bytes, truncated: false } });

test('samples wait at most flushEveryMs, then go as one valid batch into the capture lane', async (t) => {
  const { clock, buffer, batches } = setup();
  t.is(clock.pending(), 0, 'nothing captured: no timer');
  buffer.add(captureSample({ latencyMs: 1 }));
  clock.advance(3000);
  buffer.add(captureSample({ latencyMs: 2 }));
  await settle();
  t.is(batches().length, 0);
  clock.advance(2000);
  await settle();
  const [first] = batches();
  t.is(first?.lane, 'capture');
  t.is(first?.id, first?.batch.id);
  t.regex(first!.id, new RegExp(TELEMETRY_BATCH_ID_PATTERN));
  t.deepEqual(first?.batch.samples.map((s) => s.latencyMs), [1, 2]);
  t.is(clock.pending(), 0, 'an empty buffer keeps no timer');
  t.is(buffer.dropped(), 0);
});

test('flush appends what is held at once and resolves once it is appended; sampling goes on', async (t) => {
  const { clock, buffer, batches } = setup();
  buffer.add(captureSample({ latencyMs: 1 }));
  await buffer.flush();
  t.deepEqual(batches().map((b) => b.batch.samples.map((s) => s.latencyMs)), [[1]], 'appended without waiting for flushEveryMs');
  t.is(clock.pending(), 0, 'no timer left for the flushed batch');
  await buffer.flush();
  t.is(batches().length, 1, 'an empty flush appends nothing');
  buffer.add(captureSample({ latencyMs: 2 }));
  clock.advance(5000);
  await settle();
  t.deepEqual(batches().map((b) => b.batch.samples.map((s) => s.latencyMs)), [[1], [2]]);
});

test('a batch is cut before it would pass flushBytes, and at flushSamples', async (t) => {
  const bySize = setup({ flushBytes: 10_000 });
  for (let i = 0; i < 7; i++) bySize.buffer.add(sized(3000, i));
  await bySize.buffer.close();
  const sizes = bySize.batches().map((b) => b.batch.samples.length);
  t.deepEqual(sizes, [3, 3, 1]);
  t.true(bySize.batches().every((b) => b.bytes.length <= 10_000));

  const byCount = setup({ flushSamples: 4 });
  for (let i = 0; i < 9; i++) byCount.buffer.add(captureSample({ latencyMs: i }));
  await settle();
  t.deepEqual(byCount.batches().map((b) => b.batch.samples.length), [4, 4], 'full batches go at once');
  await byCount.buffer.close();
  t.deepEqual(byCount.batches().flatMap((b) => b.batch.samples.map((s) => s.latencyMs)), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'in order, the rest on close');
  t.is(new Set(byCount.batches().map((b) => b.id)).size, 3, 'ids are unique');
});

test('the default budget keeps batches under the broker limit; a sample too large for any message is dropped and counted', async (t) => {
  const { buffer, batches, logs } = setup();
  for (let i = 0; i < 5; i++) buffer.add(sized(60_000, i));
  buffer.add(sized(MAX_MESSAGE_BYTES, 99));
  await buffer.close();
  t.true(batches().every((b) => b.bytes.length <= 192 * 1024));
  t.deepEqual(batches().flatMap((b) => b.batch.samples.map((s) => s.latencyMs)), [0, 1, 2, 3, 4]);
  t.is(buffer.dropped(), 1);
  t.like(logs[0], { msg: 'a captured sample is too large for a telemetry message' });
});

test('while appends fall behind, samples beyond maxBufferedBytes are dropped and counted; add never waits', async (t) => {
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const appended: Batch[] = [];
  const { buffer, logs } = setup({
    flushSamples: 1,
    maxBufferedBytes: 5 * (JSON.stringify(captureSample()).length + 1),
    append: async (b) => {
      await held;
      appended.push(b);
    },
  });
  for (let i = 0; i < 8; i++) buffer.add(captureSample({ latencyMs: i }));
  t.is(buffer.dropped(), 3);
  t.is(logs.filter((l) => l.msg.startsWith('captures are dropped')).length, 1, 'one warning, the count says the rest');
  release();
  await settle();
  // Room again once appended.
  buffer.add(captureSample({ latencyMs: 8 }));
  await buffer.close();
  t.is(appended.length, 6);
  t.is(buffer.dropped(), 3);
});

test('a failed append loses its batch (counted and logged), not the ones after it', async (t) => {
  let calls = 0;
  const appended: Batch[] = [];
  const { buffer, logs } = setup({
    flushSamples: 2,
    append: async (b) => {
      if (++calls === 1) throw new Error('disk full');
      appended.push(b);
    },
  });
  for (let i = 0; i < 5; i++) buffer.add(captureSample({ latencyMs: i }));
  await buffer.close();
  t.is(buffer.dropped(), 2);
  t.is(appended.length, 2);
  t.like(logs.find((l) => l.msg === 'a captures batch was lost'), { level: 50 });
});

test('an invalid sample is found on the device: its batch is dropped and counted, never queued', async (t) => {
  const { buffer, appended } = setup();
  buffer.add(captureSample({ status: 1000 }));
  await buffer.close();
  t.is(appended.length, 0);
  t.is(buffer.dropped(), 1);
});

test('after close, samples are dropped and counted', async (t) => {
  const { buffer, appended, clock } = setup();
  buffer.add(captureSample());
  await buffer.close();
  t.notThrows(() => buffer.add(captureSample()));
  t.is(buffer.dropped(), 1);
  t.is(appended.length, 1);
  t.is(clock.pending(), 0);
});
