/**
 * `shipLogs: error`: which lines go (error-lines.ts), the per-service rate limit and its drop count,
 * followers matching the running replicas (log-shipper.ts), the outbox's own logs lane, and the
 * hub's storage and query of shipped lines (shipped-logs.ts) on the injected clock.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { isErrorLine } from '../../agent/logs/error-lines.js';
import { LogShipper, type LogShipperOptions } from '../../agent/logs/log-shipper.js';
import type { ContainerLogLine, ContainerLogOptions, ManagedContainer } from '../../agent/runtime/container-runtime.js';
import { DEFAULT_LOG_QUOTA_BYTES, Outbox, type Batch } from '../../agent/telemetry/outbox.js';
import { decodeMessage, MAX_SHIPPED_LINE_CHARS, type DesiredService, type LogsBatch } from '../../shared/protocol.js';
import { TelemetryIngest } from '../../hub/telemetry/ingest.js';
import { queryShippedLogs } from '../../hub/telemetry/shipped-logs.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { ARCHIVE_NOW, archiveClock, archiveDir, archiveLogger, openArchive } from '../helpers/telemetry-archive.js';
import { waitFor } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });
const T0 = Date.parse('2024-05-03T12:00:00Z');

test('error lines: JSON lines by their level on any stream, other lines when on stderr', (t) => {
  t.true(isErrorLine('stderr', 'Traceback (most recent call last):'));
  t.false(isErrorLine('stdout', 'listening on 8080'));
  t.true(isErrorLine('stdout', JSON.stringify({ level: 'error', msg: 'run() failed' })));
  t.true(isErrorLine('stdout', JSON.stringify({ level: 60, msg: 'fatal' })));
  t.true(isErrorLine('stdout', JSON.stringify({ level: 50, msg: 'pino error' })));
  t.false(isErrorLine('stdout', JSON.stringify({ level: 40, msg: 'pino warn' })));
  t.false(isErrorLine('stderr', JSON.stringify({ level: 'info', msg: 'an info line some loggers put on stderr' })));
  t.true(isErrorLine('stdout', JSON.stringify({ severity: 'FATAL', msg: 'x' })));
  t.true(isErrorLine('stderr', '{ not json'));
  t.false(isErrorLine('stdout', '{ not json'));
});

function shipper(clock: ManualClock, o: Partial<LogShipperOptions> = {}) {
  const appended: LogsBatch[] = [];
  let n = 0;
  const s = new LogShipper({
    runtime: { list: async () => [], logs: async function* () {} },
    deviceId: 'dev-1',
    desired: () => [],
    append: async (b: Batch) => {
      t0(b.lane === 'logs');
      const decoded = decodeMessage('telemetry', b.bytes);
      if (!decoded.ok || decoded.value.kind !== 'logs') throw new Error(`not a valid logs batch: ${decoded.ok ? decoded.value.kind : decoded.error}`);
      appended.push(decoded.value);
    },
    nextId: () => `l.${++n}`,
    clock,
    logger,
    ...o,
  });
  return { s, appended };
}
function t0(ok: boolean): void {
  if (!ok) throw new Error('appended to another lane than logs');
}

const err = (i: number) => ({ ts: new Date(T0 + i).toISOString(), stream: 'stderr' as const, line: `boom ${i}` });

test('rate limit per service: a burst of 100, then 20 a second; the rest counted as dropped, in the next batch', async (t) => {
  const clock = new ManualClock(T0);
  const { s, appended } = shipper(clock);
  for (let i = 0; i < 130; i++) s.take('iris', 1, err(i));
  s.take('iris', 1, { ts: new Date(T0).toISOString(), stream: 'stdout', line: 'not an error' });
  // Another service has its own bucket.
  s.take('wine', 2, err(0));
  clock.advance(2000);
  await s.close();
  t.is(appended.length, 1);
  const [batch] = appended;
  t.is(batch!.lines.filter((l) => l.service === 'iris').length, 100);
  t.deepEqual(batch!.lines.find((l) => l.service === 'wine'), { ...err(0), service: 'wine', replica: 2 });
  t.deepEqual(batch!.dropped, { iris: 30 });
  t.deepEqual(batch!.lines.slice(0, 2).map((l) => l.line), ['boom 0', 'boom 1']);
});

test('rate limit refills: one second later 20 more lines go, the 21st is dropped', async (t) => {
  const clock = new ManualClock(T0);
  const { s, appended } = shipper(clock);
  for (let i = 0; i < 100; i++) s.take('iris', 1, err(i));
  s.flush();
  clock.advance(1000);
  for (let i = 0; i < 21; i++) s.take('iris', 1, err(1000 + i));
  await s.close();
  t.is(appended.length, 2);
  t.is(appended[1]!.lines.length, 20);
  t.deepEqual(appended[1]!.dropped, { iris: 1 });
});

test('a line over 8 KiB is cut, with … appended', async (t) => {
  const clock = new ManualClock(T0);
  const { s, appended } = shipper(clock);
  s.take('iris', 1, { ts: new Date(T0).toISOString(), stream: 'stderr', line: 'x'.repeat(20_000) });
  await s.close();
  t.is(appended[0]!.lines[0]!.line, `${'x'.repeat(MAX_SHIPPED_LINE_CHARS)}…`);
});

/** A runtime whose containers and their output the test sets; counts the followers open. */
class ScriptedRuntime {
  containers: ManagedContainer[] = [];
  readonly open = new Map<string, number>();
  readonly sinceAsked: Array<number | undefined> = [];
  readonly #output = new Map<string, ContainerLogLine[]>();
  #wake = new Set<() => void>();

  async list(): Promise<ManagedContainer[]> {
    return this.containers.map((c) => ({ ...c }));
  }

  readonly #cut = new Set<string>();

  write(id: string, line: ContainerLogLine): void {
    this.#output.set(id, [...(this.#output.get(id) ?? []), line]);
    for (const w of [...this.#wake]) w();
  }

  /** Ends the container's open log streams, as a broken connection to the engine would. */
  cut(id: string): void {
    this.#cut.add(id);
    for (const w of [...this.#wake]) w();
  }

  async *logs(id: string, opts: ContainerLogOptions): AsyncGenerator<ContainerLogLine> {
    this.sinceAsked.push(opts.since);
    this.open.set(id, (this.open.get(id) ?? 0) + 1);
    try {
      let seen = 0;
      while (!opts.signal.aborted) {
        if (this.#cut.delete(id)) return;
        const lines = (this.#output.get(id) ?? []).filter((l) => opts.since === undefined || Date.parse(l.ts) / 1000 >= opts.since);
        if (lines.length > seen) {
          yield* lines.slice(seen);
          seen = lines.length;
          continue;
        }
        await new Promise<void>((resolve) => {
          const w = () => {
            this.#wake.delete(w);
            resolve();
          };
          this.#wake.add(w);
          opts.signal.addEventListener('abort', w, { once: true });
        });
      }
    } finally {
      this.open.set(id, this.open.get(id)! - 1);
    }
  }
}

const container = (id: string, service: string, created: number, running = true): ManagedContainer => ({
  id,
  name: `edgeml-${service}-${id}`,
  service,
  revision: 1,
  image: 'img@sha256:' + '0'.repeat(64),
  port: 40000,
  running,
  created,
});
const desired = (name: string, shipLogs?: 'error'): DesiredService => ({
  name,
  revision: 1,
  image: 'img@sha256:' + '0'.repeat(64),
  limits: { maxConcurrent: 4, maxQueue: 16, memoryBytes: null, cpus: null },
  keyHash: '0'.repeat(64),
  models: [],
  ...(shipLogs ? { shipLogs } : {}),
});

test('followers: one per running replica of a shipping service, none twice, gone when shipping is off; from the agent start on', async (t) => {
  const clock = new ManualClock(T0);
  const runtime = new ScriptedRuntime();
  let services = [desired('iris', 'error'), desired('wine')];
  const { s, appended } = shipper(clock, { runtime, desired: () => services });
  runtime.containers = [container('a', 'iris', T0 / 1000 - 3600), container('b', 'iris', T0 / 1000 + 5), container('c', 'iris', 0, false), container('w', 'wine', 0)];
  await s.sync();
  await s.sync();
  t.deepEqual(s.following().sort(), ['a', 'b']);
  await waitFor('both followers open', () => runtime.open.get('a') === 1 && runtime.open.get('b') === 1);
  // An old container is read from the agent's start, a newer one from its creation: nothing older is sent again.
  t.deepEqual(runtime.sinceAsked.sort(), [T0 / 1000, T0 / 1000 + 5]);
  runtime.write('a', { ts: new Date(T0 - 60_000).toISOString(), stream: 'stderr', line: 'before the agent started' });
  runtime.write('b', { ts: new Date(T0 + 6000).toISOString(), stream: 'stderr', line: 'boom in replica 2' });
  runtime.write('w', { ts: new Date(T0 + 6000).toISOString(), stream: 'stderr', line: 'wine does not ship' });
  s.flush();
  await waitFor('a line shipped', async () => {
    s.flush();
    await new Promise((r) => setImmediate(r));
    return appended.some((b) => b.lines.length > 0);
  });
  t.deepEqual(appended.flatMap((b) => b.lines).map((l) => [l.service, l.replica, l.line]), [['iris', 2, 'boom in replica 2']]);

  // The replica goes: its follower stops.
  runtime.containers = runtime.containers.filter((c) => c.id !== 'b');
  await s.sync();
  t.deepEqual(s.following(), ['a']);
  await waitFor('b closed', () => runtime.open.get('b') === 0);
  // Shipping off: every follower stops.
  services = [desired('iris'), desired('wine')];
  await s.sync();
  t.deepEqual(s.following(), []);
  await waitFor('a closed', () => runtime.open.get('a') === 0);
  await s.close();
});

test('followers: lines written in one millisecond are all shipped; a follower that starts again sends none twice', async (t) => {
  const clock = new ManualClock(T0);
  const runtime = new ScriptedRuntime();
  const { s, appended } = shipper(clock, { runtime, desired: () => [desired('iris', 'error')] });
  runtime.containers = [container('a', 'iris', T0 / 1000 - 3600)];
  await s.sync();
  await waitFor('the follower open', () => runtime.open.get('a') === 1);
  const at = new Date(T0 + 1000).toISOString();
  const traceback = ['Traceback (most recent call last):', '  File "score.py", line 3, in run', 'ValueError: boom'];
  for (const line of traceback) runtime.write('a', { ts: at, stream: 'stderr', line });
  const shipped = async (n: number) => {
    s.flush();
    await new Promise((r) => setImmediate(r));
    return appended.flatMap((b) => b.lines).length >= n;
  };
  await waitFor('the traceback shipped', () => shipped(3));
  // The stream breaks; the next sync follows again from that second: the three lines come again and are skipped.
  runtime.cut('a');
  await waitFor('the follower gone', () => runtime.open.get('a') === 0 && s.following().length === 0);
  await s.sync();
  await waitFor('following again', () => runtime.open.get('a') === 1);
  runtime.write('a', { ts: at, stream: 'stderr', line: 'one more in the same millisecond' });
  await waitFor('the new line shipped', () => shipped(4));
  t.deepEqual(
    appended.flatMap((b) => b.lines).map((l) => l.line),
    [...traceback, 'one more in the same millisecond'],
  );
  await s.close();
});

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-logs-lane-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('outbox: the logs lane has its own quota (default 8m); beyond it its oldest batches are dropped and counted, other lanes untouched', async (t) => {
  const dir = await tempDir(t);
  const maxBatchBytes = 1000;
  const outbox = await Outbox.open(dir, { limits: { metrics: 10_000, capture: 10_000, logs: 3000 }, maxBatchBytes, logger });
  t.teardown(() => outbox.close());
  await outbox.append({ id: 'm.1', lane: 'metrics', bytes: Buffer.alloc(900) });
  for (let i = 1; i <= 5; i++) await outbox.append({ id: `l.${i}`, lane: 'logs', bytes: Buffer.alloc(900) });
  const size = outbox.size();
  t.is(size.logs!.count, 3);
  t.is(size.metrics.count, 1);
  t.deepEqual(outbox.dropped(), { metrics: 0, capture: 0, logs: 2 });
  // Metrics first, then the logs lane takes its turn, oldest kept first.
  t.is((await outbox.next())!.id, 'm.1');
  t.is((await outbox.next())!.id, 'l.3');
  t.is(DEFAULT_LOG_QUOTA_BYTES, 8 * 1024 * 1024);
  // An outbox made before the logs lane reports no logs drops (older hubs refuse the key).
  const other = await Outbox.open(await tempDir(t), { limits: { metrics: 10_000, capture: 10_000 }, maxBatchBytes, logger });
  t.teardown(() => other.close());
  t.deepEqual(other.dropped(), { metrics: 0, capture: 0 });
});

test('hub: shipped lines are stored per service and device, and read back newest `limit` first-to-last with the dropped count', async (t) => {
  const archive = await openArchive(t, await archiveDir(t));
  const ingest = new TelemetryIngest({ archive, servicesOf: () => new Set(['iris']), clock: archiveClock, retentionDays: 30, logger: archiveLogger });
  const at = (s: number) => new Date(ARCHIVE_NOW - s * 1000).toISOString();
  const line = (s: number, text: string, replica = 1) => ({ ts: at(s), service: 'iris', replica, stream: 'stderr' as const, line: text });
  const batch = (id: string, lines: LogsBatch['lines'], dropped: LogsBatch['dropped'] = {}): LogsBatch => ({ v: 1, kind: 'logs', id, lines, dropped });
  t.is(await ingest.accept('dev-1', batch('l.1', [line(50, 'one'), line(40, 'two', 2), { ...line(40, 'not ours'), service: 'wine' }], { iris: 7, wine: 3 })), 'stored');
  t.is(await ingest.accept('dev-2', batch('l.1', [line(30, 'three')])), 'stored');
  // The same batch again (its ack was lost): stored once.
  t.is(await ingest.accept('dev-2', batch('l.1', [line(30, 'three')])), 'duplicate');

  const window = { since: new Date(ARCHIVE_NOW - 3600_000), until: new Date(ARCHIVE_NOW + 1) };
  const all = await queryShippedLogs(archive, { service: 'iris', ...window, limit: 500 });
  t.deepEqual(all, {
    service: 'iris',
    lines: [
      { ts: at(50), device: 'dev-1', replica: 1, stream: 'stderr', line: 'one' },
      { ts: at(40), device: 'dev-1', replica: 2, stream: 'stderr', line: 'two' },
      { ts: at(30), device: 'dev-2', replica: 1, stream: 'stderr', line: 'three' },
    ],
    dropped: 7,
  });
  t.deepEqual((await queryShippedLogs(archive, { service: 'iris', ...window, limit: 2 })).lines.map((l) => l.line), ['two', 'three']);
  t.deepEqual((await queryShippedLogs(archive, { service: 'iris', device: 'dev-2', ...window, limit: 500 })).lines.map((l) => l.line), ['three']);
  t.deepEqual((await queryShippedLogs(archive, { service: 'iris', since: new Date(ARCHIVE_NOW - 45_000), until: window.until, limit: 500 })).lines.map((l) => l.line), ['two', 'three']);
  t.deepEqual(await queryShippedLogs(archive, { service: 'wine', ...window, limit: 500 }), { service: 'wine', lines: [], dropped: 0 });
});
