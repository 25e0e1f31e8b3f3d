/**
 * The agent's on-disk telemetry outbox (real filesystem, in a temp directory): order, lanes and
 * their separate quotas, drop counts that survive restarts, recovery from what a crash leaves
 * behind, the batch size bound, and a process killed (-9) right after an acknowledged append.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { pino } from 'pino';
import { BatchTooLargeError, Outbox, type Batch, type Lane, type OutboxOptions } from '../../agent/telemetry/outbox.js';
import { isEdgemlError, ErrorCodes } from '../../shared/errors.js';
import { tempDir } from '../helpers/edgeml-process.js';

const logger = pino({ level: 'silent' });
/** Small quotas so a few batches fill a lane: 16-byte header + 2-byte id + 82-byte payload = 100 bytes a file. */
const PAYLOAD = 82;
const FILE = 100;
const options = (over: Partial<OutboxOptions> = {}): OutboxOptions => ({ limits: { metrics: 5 * FILE, capture: 3 * FILE }, maxBatchBytes: 100, logger, ...over });
const batch = (id: string, lane: Lane, fill = id): Batch => ({ id, lane, bytes: Buffer.alloc(PAYLOAD, fill) });

async function openOutbox(t: { teardown(fn: () => unknown): void }, dir: string, over: Partial<OutboxOptions> = {}): Promise<Outbox> {
  const outbox = await Outbox.open(dir, options(over));
  t.teardown(() => outbox.close());
  return outbox;
}

/** Every waiting batch, in sending order, acking each. */
async function drain(outbox: Outbox): Promise<string[]> {
  const ids: string[] = [];
  for (let b = await outbox.next(); b; b = await outbox.next()) {
    ids.push(b.id);
    await outbox.ack(b.id);
  }
  return ids;
}

test('sends oldest first, metrics before captures, one batch out at a time, and forgets a batch only when acked', async (t) => {
  const dir = await tempDir(t);
  const outbox = await openOutbox(t, dir);
  for (const b of [batch('c1', 'capture'), batch('m1', 'metrics'), batch('c2', 'capture'), batch('m2', 'metrics')]) await outbox.append(b);
  t.deepEqual(outbox.size(), { metrics: { count: 2, bytes: 2 * FILE }, capture: { count: 2, bytes: 2 * FILE }, feedback: { count: 0, bytes: 0 }, logs: { count: 0, bytes: 0 } });

  const first = await outbox.next();
  t.deepEqual(first, batch('m1', 'metrics'), 'the payload comes back byte for byte');
  t.is((await outbox.next())?.id, 'm2', 'm1 is out for delivery: not offered twice');
  await outbox.release('m2');
  t.is((await outbox.next())?.id, 'm2', 'its publish failed: offered again');
  await outbox.release('m2');
  t.true(await outbox.ack('m1'));
  t.false(await outbox.ack('m1'), 'a second ack is a no-op');
  t.false(await outbox.ack('never-appended'));
  t.deepEqual(await drain(outbox), ['m2', 'c1', 'c2']);
  t.is(await outbox.next(), null);
  t.deepEqual(outbox.size(), { metrics: { count: 0, bytes: 0 }, capture: { count: 0, bytes: 0 }, feedback: { count: 0, bytes: 0 }, logs: { count: 0, bytes: 0 } });
  t.deepEqual(await readdir(join(dir, 'metrics')), []);
  t.deepEqual(await readdir(join(dir, 'capture')), []);

  await t.throwsAsync(outbox.append(batch('m1', 'metrics')).then(() => outbox.append(batch('m1', 'metrics'))), { message: /already waiting/ });
});

test('file names sort in append order, and the order survives a restart', async (t) => {
  const dir = await tempDir(t);
  const before = await Outbox.open(dir, options({ limits: { metrics: 20 * FILE, capture: 3 * FILE } }));
  for (let i = 0; i < 12; i++) await before.append(batch(`m${i}`, 'metrics'));
  await before.ack('m11');
  await before.close();
  // The id sits after the 16-byte header; its length is at offset 6.
  const idOf = (file: Buffer) => file.subarray(16, 16 + file.readUInt16BE(6)).toString();
  const names = (await readdir(join(dir, 'metrics'))).sort();
  const ids = await Promise.all(names.map(async (n) => idOf(await readFile(join(dir, 'metrics', n)))));
  t.deepEqual(ids, Array.from({ length: 11 }, (_, i) => `m${i}`));

  // The sequence goes on from the files (even after the newest was acked), never back to 1.
  const after = await openOutbox(t, dir, { limits: { metrics: 20 * FILE, capture: 3 * FILE } });
  await after.append(batch('m12', 'metrics'));
  t.deepEqual(await drain(after), [...Array.from({ length: 11 }, (_, i) => `m${i}`), 'm12']);
});

test('a lane over its quota drops its own oldest batches only, and counts them across restarts', async (t) => {
  const dir = await tempDir(t);
  const outbox = await Outbox.open(dir, options());
  for (const id of ['m1', 'm2', 'm3']) await outbox.append(batch(id, 'metrics'));
  for (let i = 1; i <= 7; i++) await outbox.append(batch(`c${i}`, 'capture'));

  t.deepEqual(outbox.dropped(), { metrics: 0, capture: 4 });
  t.deepEqual(outbox.size(), { metrics: { count: 3, bytes: 3 * FILE }, capture: { count: 3, bytes: 3 * FILE }, feedback: { count: 0, bytes: 0 }, logs: { count: 0, bytes: 0 } });
  t.is((await readdir(join(dir, 'capture'))).length, 3, 'the dropped files are gone from the disk');
  await outbox.close();

  const reopened = await openOutbox(t, dir);
  t.deepEqual(reopened.dropped(), { metrics: 0, capture: 4 }, 'drop counts survive a restart');
  for (let i = 4; i <= 7; i++) await reopened.append(batch(`m${i}`, 'metrics'));
  t.deepEqual(reopened.dropped(), { metrics: 2, capture: 4 }, 'metrics have their own quota of 5');
  t.deepEqual(reopened.corrupt(), { metrics: 0, capture: 0 });
  t.deepEqual(await drain(reopened), ['m3', 'm4', 'm5', 'm6', 'm7', 'c5', 'c6', 'c7']);
});

test('the count bound drops the oldest too, and lowered limits apply at open', async (t) => {
  const dir = await tempDir(t);
  const outbox = await Outbox.open(dir, options({ maxBatches: 2 }));
  for (const id of ['m1', 'm2', 'm3']) await outbox.append(batch(id, 'metrics'));
  t.deepEqual(outbox.dropped(), { metrics: 1, capture: 0 });
  await outbox.close();

  const smaller = await openOutbox(t, dir, { maxBatches: 1 });
  t.deepEqual(smaller.dropped(), { metrics: 2, capture: 0 });
  t.deepEqual(await drain(smaller), ['m3']);
});

test('a batch over the size limit is refused with an error naming the limit, and nothing is written', async (t) => {
  const dir = await tempDir(t);
  const outbox = await openOutbox(t, dir);
  const err = await t.throwsAsync(outbox.append({ id: 'big', lane: 'capture', bytes: Buffer.alloc(101) }), { instanceOf: BatchTooLargeError });
  t.is(err?.code, 'AGENT_E_TELEMETRY_BATCH_TOO_LARGE');
  t.regex(err?.message ?? '', /101 bytes .* maxBatchBytes=100/);
  t.deepEqual(outbox.size().capture, { count: 0, bytes: 0 });
  t.deepEqual(await readdir(join(dir, 'capture')), []);

  // Ids are bounded too (they go in every file's header).
  const badId = await t.throwsAsync(outbox.append({ id: 'x'.repeat(129), lane: 'metrics', bytes: Buffer.alloc(1) }));
  t.true(isEdgemlError(badId, ErrorCodes.INTERNAL));

  // A quota that cannot hold one full-size batch is a configuration error, caught at open.
  const config = await t.throwsAsync(Outbox.open(dir, options({ limits: { metrics: 5 * FILE, capture: 200 } })));
  t.true(isEdgemlError(config, ErrorCodes.CONFIG_INVALID));
  t.regex(config?.message ?? '', /limits\.capture/);
});

test('after a crash: temp files are removed, truncated and corrupt batches are skipped and counted, the rest is kept', async (t) => {
  const dir = await tempDir(t);
  const outbox = await Outbox.open(dir, options());
  for (const id of ['m1', 'm2', 'm3', 'm4']) await outbox.append(batch(id, 'metrics'));
  await outbox.append(batch('c1', 'capture'));
  await outbox.ack('m2');
  await outbox.close();

  const names = (await readdir(join(dir, 'metrics'))).sort(); // m1, m3, m4
  // What a kill during writeFileDurably leaves: a temp file never renamed (in a lane and at the top).
  await writeFile(join(dir, 'metrics', `.${'9'.repeat(16)}.batch.0123456789ab.tmp`), 'half a batch');
  await writeFile(join(dir, `.counters.json.0123456789ab.tmp`), '{"v":1,"dro');
  // A torn batch (m3), and a flipped payload byte (m4) that only the checksum can see.
  await truncate(join(dir, 'metrics', names[1]!), 40);
  const m4 = await readFile(join(dir, 'metrics', names[2]!));
  m4.writeUInt8(m4.readUInt8(m4.length - 1) ^ 0xff, m4.length - 1);
  await writeFile(join(dir, 'metrics', names[2]!), m4);
  // A stranger's file is left alone.
  await writeFile(join(dir, 'metrics', 'README'), 'not mine');

  const reopened = await openOutbox(t, dir);
  t.deepEqual((await readdir(dir)).sort(), ['capture', 'counters.json', 'feedback', 'logs', 'metrics']);
  t.deepEqual(reopened.corrupt(), { metrics: 1, capture: 0 }, 'the truncated batch is found at open');
  t.deepEqual(await drain(reopened), ['m1', 'c1'], 'the corrupt payload is skipped when read');
  t.deepEqual(reopened.corrupt(), { metrics: 2, capture: 0 });
  t.deepEqual(reopened.dropped(), { metrics: 0, capture: 0 });
  t.deepEqual(await readdir(join(dir, 'metrics')), ['README']);
  await reopened.close();
  t.deepEqual((await openOutbox(t, dir)).corrupt(), { metrics: 2, capture: 0 }, 'corrupt counts survive a restart');
});

test('a crash between counting a drop and removing the file does not count it twice', async (t) => {
  const dir = await tempDir(t);
  const outbox = await Outbox.open(dir, options());
  for (const id of ['c1', 'c2', 'c3']) await outbox.append(batch(id, 'capture'));
  const [oldest] = (await readdir(join(dir, 'capture'))).sort();
  const saved = await readFile(join(dir, 'capture', oldest!));
  await outbox.append(batch('c4', 'capture'));
  t.deepEqual(outbox.dropped(), { metrics: 0, capture: 1 });
  await outbox.close();
  // As if the process died after the counters were written and before the unlink.
  await writeFile(join(dir, 'capture', oldest!), saved);

  const reopened = await openOutbox(t, dir);
  t.deepEqual(reopened.dropped(), { metrics: 0, capture: 1 });
  t.deepEqual(reopened.corrupt(), { metrics: 0, capture: 0 });
  t.deepEqual(await drain(reopened), ['c2', 'c3', 'c4']);
});

test('a batch whose append resolved survives kill -9 of the process', async (t) => {
  const dir = await tempDir(t);
  const outboxModule = fileURLToPath(new URL('../../agent/telemetry/outbox.ts', import.meta.url));
  const script = `
    const { Outbox } = await import(${JSON.stringify(outboxModule)});
    const { pino } = await import('pino');
    const outbox = await Outbox.open(${JSON.stringify(dir)}, { limits: { metrics: 2e6, capture: 2e6 }, logger: pino({ level: 'silent' }) });
    await outbox.append({ id: 'before-kill', lane: 'metrics', bytes: Buffer.from('acknowledged') });
    process.stdout.write('appended\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('appended') && resolve());
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before appending: ${stderr}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');

  const reopened = await openOutbox(t, dir, { limits: { metrics: 2e6, capture: 2e6 } });
  t.deepEqual(await reopened.next(), { id: 'before-kill', lane: 'metrics', bytes: Buffer.from('acknowledged') });
});
