/**
 * The outbox's delivery order with labels waiting (agent/telemetry/outbox.ts): metrics always
 * first; labels and captures take turns, so a steady stream of labels cannot starve the captures
 * they join at the hub.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { Outbox } from '../../agent/telemetry/outbox.js';

const logger = pino({ level: 'silent' });

test('labels and captures take turns after metrics, however many labels wait', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'feedback-outbox-turns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const outbox = await Outbox.open(dir, { limits: { metrics: 1 << 20, capture: 1 << 20 }, maxBatchBytes: 1024, logger });
  t.teardown(() => outbox.close());
  const add = (id: string, lane: 'metrics' | 'capture' | 'feedback') => outbox.append({ id, lane, bytes: Buffer.from(id) });
  for (const id of ['c1', 'c2', 'c3']) await add(id, 'capture');
  for (const id of ['f1', 'f2', 'f3', 'f4', 'f5']) await add(id, 'feedback');
  await add('m1', 'metrics');
  const order: string[] = [];
  const take = async () => {
    const b = await outbox.next();
    if (b) order.push(b.id);
    return b;
  };
  for (let i = 0; i < 4; i++) await take();
  // A metrics batch that arrives meanwhile still goes before everything else; the turns go on after it.
  await add('m2', 'metrics');
  while (await take());
  t.deepEqual(order, ['m1', 'f1', 'c1', 'f2', 'm2', 'c2', 'f3', 'c3', 'f4', 'f5']);
});

test('delivered batches leave the turns as they were: an ack does not give a lane another turn', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'feedback-outbox-turns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const outbox = await Outbox.open(dir, { limits: { metrics: 1 << 20, capture: 1 << 20 }, maxBatchBytes: 1024, logger });
  t.teardown(() => outbox.close());
  for (const id of ['c1', 'c2']) await outbox.append({ id, lane: 'capture', bytes: Buffer.from(id) });
  for (const id of ['f1', 'f2']) await outbox.append({ id, lane: 'feedback', bytes: Buffer.from(id) });
  const order: string[] = [];
  // One publish at a time, as on a slow link: each batch is acked before the next is taken.
  for (let b = await outbox.next(); b; b = await outbox.next()) {
    order.push(b.id);
    await outbox.ack(b.id);
  }
  t.deepEqual(order, ['f1', 'c1', 'f2', 'c2']);
});
