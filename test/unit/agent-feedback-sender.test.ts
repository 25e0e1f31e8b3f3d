/**
 * The telemetry sender with the feedback lane (agent/telemetry/telemetry-sender.ts, a real outbox on
 * disk, a fake link): labels and captures together never take the last publish slot, and a batch
 * the sender took from the outbox but had no slot for is offered again, not left out until a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { Outbox } from '../../agent/telemetry/outbox.js';
import { TelemetrySender, type TelemetryLink } from '../../agent/telemetry/telemetry-sender.js';
import { systemClock } from '../../shared/clock.js';
import { encodeMessage, type TelemetryBatch } from '../../shared/protocol.js';
import { waitFor } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });

const feedback = (id: string): TelemetryBatch => ({ v: 1, kind: 'feedback', id, items: [{ ts: new Date(0).toISOString(), requestId: id, service: 'iris', revision: 1, models: [], label: 1 }] });

test('a label batch with no slot free is sent once a slot frees, and labels and captures leave the last slot to metrics', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'feedback-sender-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const outbox = await Outbox.open(dir, { limits: { metrics: 1 << 20, capture: 1 << 20 }, maxBatchBytes: 64 * 1024, logger });
  const published: string[] = [];
  const pending = new Map<string, () => void>();
  const link: TelemetryLink = {
    connected: () => true,
    publish: (_channel, message) => {
      published.push(message.id);
      return new Promise<void>((resolve) => pending.set(message.id, resolve));
    },
  };
  const sender = new TelemetrySender({ outbox, clock: systemClock, logger, maxInFlight: 2, publishTimeoutMs: 60_000 });
  t.teardown(async () => {
    for (const resolve of pending.values()) resolve();
    await sender.close();
    await outbox.close();
  });
  for (const id of ['f1', 'f2']) await outbox.append({ id, lane: 'feedback', bytes: encodeMessage('telemetry', feedback(id)) });
  sender.start(link);
  await waitFor('f1 published', () => published.includes('f1'), 5000, 2);
  t.deepEqual(published, ['f1'], 'one slot of two: the other is kept for metrics');
  pending.get('f1')!();
  await waitFor('f2 published after f1 was acknowledged', () => published.includes('f2'), 5000, 2);
  pending.get('f2')!();
  await waitFor('the lane empty', () => outbox.size().feedback.count === 0, 5000, 2);
  t.deepEqual(published, ['f1', 'f2']);
});
