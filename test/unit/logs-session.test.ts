import test from 'ava';
import { pino } from 'pino';
import { AgentLogRing, teeLogger } from '../../agent/logs/agent-log-ring.js';
import { capLine, LogSession, lineBytes } from '../../agent/logs/log-session.js';
import { DEFAULT_TAIL_LINES, LogSessions } from '../../agent/logs/log-sessions.js';
import { ByteRateLimit } from '../../agent/logs/rate-limit.js';
import type { ContainerLogLine } from '../../agent/runtime/container-runtime.js';
import { LogDemuxer, MAX_RAW_LINE_CHARS } from '../../agent/runtime/log-demux.js';
import { decodeMessage, LOG_SESSION_LIMITS, MAX_MESSAGE_BYTES, type Command, type LogLine, type LogsMessage } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { FakeContainerRuntime } from '../helpers/fake-container-runtime.js';

const logger = pino({ level: 'silent' });
const T0 = Date.parse('2026-01-01T00:00:00Z');
const settle = () => new Promise((r) => setImmediate(r));

const line = (text: string, extra: Partial<LogLine> = {}): LogLine => ({ ts: new Date(T0).toISOString(), source: 'iris', replica: 1, stream: 'stdout', line: text, ...extra });

/** A source the test writes to; it ends when told, or when the session's signal aborts. */
function pushSource() {
  const queued: LogLine[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  return {
    push(...lines: LogLine[]) {
      queued.push(...lines);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
    source: async function* (signal: AbortSignal): AsyncGenerator<LogLine> {
      signal.addEventListener('abort', () => wake?.());
      for (;;) {
        while (queued.length > 0) yield queued.shift()!;
        if (ended || signal.aborted) return;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    },
  };
}

function session(clock: ManualClock, source: (signal: AbortSignal) => AsyncIterable<LogLine>, o: Partial<{ maxBytes: number; maxMs: number; leaseMs: number; bytesPerSecond: number }> = {}) {
  const sent: LogsMessage[] = [];
  const s = new LogSession({ id: 's1', source, send: async (m) => void sent.push(m), clock, logger, maxBytes: 1 << 20, maxMs: 600_000, leaseMs: 30_000, bytesPerSecond: 1 << 20, ...o });
  return { s, sent, done: s.run() };
}

const allLines = (sent: LogsMessage[]) => sent.flatMap((m) => m.lines.map((l) => l.line));

test('a source that ends sends its lines in order and ends with done; every message is valid and within the MQTT limit', async (t) => {
  const clock = new ManualClock(T0);
  const src = pushSource();
  const { sent, done } = session(clock, src.source);
  const big = 'x'.repeat(8000);
  src.push(...Array.from({ length: 100 }, (_, i) => line(`${i} ${big}`)));
  src.end();
  t.is(await done, 'done');
  t.deepEqual(allLines(sent), Array.from({ length: 100 }, (_, i) => `${i} ${big}`));
  t.deepEqual(sent.map((m) => m.seq), sent.map((_, i) => i));
  t.deepEqual(sent.at(-1)?.end, { reason: 'done' });
  t.true(sent.length > 1, 'batched into several messages');
  for (const m of sent) {
    const encoded = JSON.stringify(m);
    t.true(Buffer.byteLength(encoded) < MAX_MESSAGE_BYTES);
    t.true(decodeMessage('logs', encoded).ok);
  }
});

test('the byte cap ends a session with limit, before the line that would pass it', async (t) => {
  const clock = new ManualClock(T0);
  const src = pushSource();
  const one = lineBytes(line('a'.repeat(100)));
  const { sent, done } = session(clock, src.source, { maxBytes: one * 3 + 10 });
  src.push(...Array.from({ length: 10 }, () => line('a'.repeat(100))));
  t.is(await done, 'limit');
  t.is(allLines(sent).length, 3);
  t.is(sent.at(-1)?.end?.reason, 'limit');
});

test('a follow ends with timeout at the time cap, and when the lease is not renewed; renewing keeps it going', async (t) => {
  const clock = new ManualClock(T0);
  const capped = session(clock, pushSource().source, { maxMs: 60_000, leaseMs: 1_000_000 });
  await settle();
  clock.advance(60_000);
  t.is(await capped.done, 'timeout');
  t.regex(capped.sent.at(-1)?.end?.message ?? '', /60 s limit/);

  const leased = session(clock, pushSource().source, { leaseMs: 30_000 });
  await settle();
  for (let i = 0; i < 5; i++) {
    clock.advance(20_000);
    leased.s.renew();
  }
  await settle();
  t.is(leased.sent.length, 0, 'still running after 100 s of renewals');
  clock.advance(30_000);
  t.is(await leased.done, 'timeout');
  t.regex(leased.sent.at(-1)?.end?.message ?? '', /did not renew/);
});

test('stop ends a follow with its reason and flushes what was pending', async (t) => {
  const clock = new ManualClock(T0);
  const src = pushSource();
  const { s, sent, done } = session(clock, src.source);
  src.push(line('one'));
  await settle();
  s.stop('stopped', 'the reader went away');
  t.is(await done, 'stopped');
  t.deepEqual(allLines(sent), ['one']);
});

test('lines wait for the flush delay while following, then go together', async (t) => {
  const clock = new ManualClock(T0);
  const src = pushSource();
  const { s, sent, done } = session(clock, src.source);
  src.push(line('a'), line('b'));
  await settle();
  t.is(sent.length, 0);
  clock.advance(200);
  await settle();
  t.deepEqual(sent.map((m) => m.lines.map((l) => l.line)), [['a', 'b']]);
  s.stop('stopped');
  await done;
});

test('the rate limit holds lines back until the bucket refills, on the clock', async (t) => {
  const clock = new ManualClock(T0);
  const limit = new ByteRateLimit({ bytesPerSecond: 1000, burstBytes: 2000, clock });
  const signal = new AbortController().signal;
  t.true(await limit.take(2000, signal));
  t.is(limit.delayFor(500), 500);
  let taken = false;
  const waiting = limit.take(500, signal).then((ok) => (taken = ok));
  await settle();
  clock.advance(499);
  await settle();
  t.false(taken);
  clock.advance(1);
  await waiting;
  t.true(taken);
  const abort = new AbortController();
  const aborted = limit.take(2000, abort.signal);
  abort.abort();
  t.false(await aborted);
});

test('a session is slowed to its byte rate: past the burst, one line a second at one line of bytes a second', async (t) => {
  const clock = new ManualClock(T0);
  const src = pushSource();
  const l = line('z'.repeat(1000));
  const { sent, done } = session(clock, src.source, { bytesPerSecond: lineBytes(l) });
  src.push(l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l, l);
  src.end();
  await settle();
  // The burst is the batch size (64 KiB): about 62 lines go at once, the rest one a second.
  const burst = allLines(sent).length;
  t.true(burst < 70);
  clock.advance(1000);
  await settle();
  await settle();
  t.true(allLines(sent).length <= burst + 1 + 1);
  for (let i = 0; i < 20; i++) {
    clock.advance(1000);
    await settle();
  }
  t.is(await done, 'done');
  t.is(allLines(sent).length, 70);
});

const frame = (type: number, body: Buffer | string) => {
  const bytes = Buffer.from(body);
  const head = Buffer.alloc(8);
  head[0] = type;
  head.writeUInt32BE(bytes.length, 4);
  return Buffer.concat([head, bytes]);
};

test('demux: frames cut anywhere give whole lines per stream, with the engine time, and a last line without newline', (t) => {
  const all = Buffer.concat([frame(1, '2026-01-01T00:00:00.123456789Z hello\n2026-01-01T00:00:01Z wor'), frame(2, '2026-01-01T00:00:02Z oops\r\n'), frame(1, 'ld\n'), frame(1, '2026-01-01T00:00:03Z tail')]);
  const d = new LogDemuxer();
  const out = [];
  for (let i = 0; i < all.length; i += 5) out.push(...d.push(all.subarray(i, i + 5)));
  out.push(...d.end());
  t.deepEqual(out, [
    { ts: '2026-01-01T00:00:00.123Z', stream: 'stdout', line: 'hello' },
    { ts: '2026-01-01T00:00:02.000Z', stream: 'stderr', line: 'oops' },
    { ts: '2026-01-01T00:00:01.000Z', stream: 'stdout', line: 'world' },
    { ts: '2026-01-01T00:00:03.000Z', stream: 'stdout', line: 'tail' },
  ]);
});

test('demux: a line without a newline is kept to MAX_RAW_LINE_CHARS (the rest dropped until the newline); a character split across frames stays whole', (t) => {
  const d = new LogDemuxer();
  const out: ContainerLogLine[] = [];
  for (let i = 0; i < 100; i++) out.push(...d.push(frame(1, 'x'.repeat(10_000))));
  t.deepEqual(out, [], 'no newline yet');
  out.push(...d.push(frame(1, 'y\nnext\n')));
  t.deepEqual(out.map((l) => l.line.length), [MAX_RAW_LINE_CHARS, 4]);
  t.is(capLine(out[0]!.line), `${'x'.repeat(LOG_SESSION_LIMITS.maxLineChars)}…`);
  const euro = Buffer.from('2026-01-01T00:00:00Z price 3€\n');
  const cut = euro.length - 2; // inside the three bytes of €
  const split = new LogDemuxer();
  const lines = [...split.push(frame(2, euro.subarray(0, cut))), ...split.push(frame(1, 'other\n')), ...split.push(frame(2, euro.subarray(cut)))];
  t.deepEqual(lines.map((l) => `${l.stream} ${l.line}`), ['stdout other', 'stderr price 3€']);
  const unfinished = new LogDemuxer();
  unfinished.push(frame(1, Buffer.from('é').subarray(0, 1)));
  t.deepEqual(unfinished.end().map((l) => l.line), ['\uFFFD'], 'a character cut by the end is replaced, once');
});

test('sessions: every replica of the service, tagged by replica; at most 4 at once; stop and keepalive by session; bad args refused', async (t) => {
  const clock = new ManualClock(T0);
  const runtime = new FakeContainerRuntime();
  runtime.publish('img@sha256:' + 'a'.repeat(64));
  const spec = (name: string) => ({ name, image: 'img@sha256:' + 'a'.repeat(64), platform: 'linux/amd64', service: 'iris', revision: 1, generation: 1, port: 1, limits: { maxConcurrent: 1, maxQueue: 0, memoryBytes: null, cpus: null }, stopTimeoutSeconds: 1 });
  await runtime.pull('img@sha256:' + 'a'.repeat(64), 'linux/amd64', () => undefined, new AbortController().signal);
  const a = await runtime.create('dev', spec('a'));
  const b = await runtime.create('dev', spec('b'));
  runtime.write(a, { stream: 'stdout', line: 'from a' });
  runtime.write(b, { stream: 'stderr', line: 'from b' });
  const sent: LogsMessage[] = [];
  const ring = new AgentLogRing();
  const sessions = new LogSessions({ deviceId: 'dev', runtime, agentLog: ring, send: async (m) => void sent.push(m), clock, logger });
  const cmd = (name: Command['name'], args: Record<string, unknown>): Command => ({ v: 1, id: `c-${name}-${String(args.session)}`, name, args });
  t.true(sessions.command(cmd('logs.start', { session: 'x', source: { service: 'iris' }, follow: false, maxBytes: 1000 })).ok);
  while (!sent.some((m) => m.session === 'x' && m.end)) await settle();
  t.deepEqual(sent.filter((m) => m.session === 'x').flatMap((m) => m.lines.map((l) => `${l.replica} ${l.stream} ${l.line}`)).sort(), ['1 stdout from a', '2 stderr from b']);

  for (const s of ['f1', 'f2', 'f3', 'f4']) t.true(sessions.command(cmd('logs.start', { session: s, source: { service: 'iris' }, follow: true, tail: 0, maxBytes: 1000 })).ok);
  const fifth = sessions.command(cmd('logs.start', { session: 'f5', source: { agent: true }, follow: true, maxBytes: 1000 }));
  t.false(fifth.ok);
  t.is(fifth.error?.code, 'AGENT_E_LOG_SESSIONS_FULL');
  t.is(sessions.active(), 4);
  // The followers are reading (the fake engine answers in microtasks): a line written now is new to them.
  await settle();
  runtime.write(a, { stream: 'stdout', line: 'later' });
  const hasLater = () => sent.some((m) => m.session === 'f1' && m.lines.some((l) => l.line === 'later'));
  while (!hasLater()) {
    await settle();
    clock.advance(200);
  }
  t.true(sessions.command(cmd('logs.keepalive', { session: 'f1' })).ok);
  t.deepEqual(sessions.command(cmd('logs.stop', { session: 'f1' })).result, { session: 'f1', active: true });
  while (!sent.some((m) => m.session === 'f1' && m.end)) await settle();
  t.deepEqual(sent.filter((m) => m.session === 'f1').flatMap((m) => m.lines.map((l) => l.line)), ['later']);
  t.is(sent.find((m) => m.session === 'f1' && m.end)?.end?.reason, 'stopped');
  t.false(sessions.command(cmd('logs.start', { session: 'bad', source: { service: 'NOT valid' }, follow: false, maxBytes: 1000 })).ok);
  t.false(sessions.command(cmd('logs.start', { session: 'big', source: { agent: true }, follow: false, maxBytes: 2 << 20 })).ok);
  await sessions.close();
  t.is(sessions.active(), 0);
});

test("the agent's ring keeps what its logger (and children) wrote, bounded, and follows new lines", async (t) => {
  const ring = new AgentLogRing({ maxBytes: 300, now: () => T0 });
  const log = pino({ level: 'info' }, { write: () => undefined });
  teeLogger(log, ring);
  log.child({ component: 'x' }).info('first');
  for (let i = 0; i < 10; i++) log.info(`filler ${i}`);
  const signal = new AbortController().signal;
  const kept: string[] = [];
  for await (const l of ring.lines({ follow: false, signal })) kept.push(l.line);
  t.true(kept.length < 11, 'old lines dropped past the cap');
  t.regex(kept.at(-1)!, /filler 9/);
  t.false(kept.some((l) => l.includes('"first"')));
  const abort = new AbortController();
  const followed: string[] = [];
  const following = (async () => {
    for await (const l of ring.lines({ follow: true, tail: 0, signal: abort.signal })) {
      followed.push(l.line);
      abort.abort();
    }
  })();
  await settle();
  log.child({ component: 'y' }).warn('fresh');
  await following;
  t.is(followed.length, 1);
  t.regex(followed[0]!, /"component":"y".*"fresh"/);
});

test("the agent's ring counts lines as kept (cut to maxLineChars): after long lines it still holds as many short ones as fit", async (t) => {
  const ring = new AgentLogRing({ maxBytes: 1000, now: () => T0 });
  for (let i = 0; i < 5; i++) ring.write(`${'L'.repeat(LOG_SESSION_LIMITS.maxLineChars * 4)}\n`);
  for (let i = 0; i < 10; i++) ring.write(`short ${i} ${'s'.repeat(80)}\n`);
  const kept: string[] = [];
  for await (const l of ring.lines({ follow: false, signal: new AbortController().signal })) kept.push(l.line);
  t.is(kept.length, 10, 'the long lines went, all ten short ones stayed');
  t.regex(kept[0]!, /^short 0 /);
});

test('sessions without a tail read the last DEFAULT_TAIL_LINES lines (per replica, and of the agent), not the whole history', async (t) => {
  const clock = new ManualClock(T0);
  const runtime = new FakeContainerRuntime();
  const image = 'img@sha256:' + 'a'.repeat(64);
  runtime.publish(image);
  await runtime.pull(image, 'linux/amd64', () => undefined, new AbortController().signal);
  const id = await runtime.create('dev', { name: 'a', image, platform: 'linux/amd64', service: 'iris', revision: 1, generation: 1, port: 1, limits: { maxConcurrent: 1, maxQueue: 0, memoryBytes: null, cpus: null }, stopTimeoutSeconds: 1 });
  const extra = 7;
  for (let i = 0; i < DEFAULT_TAIL_LINES + extra; i++) runtime.write(id, { stream: 'stdout', line: `c${i}` });
  const ring = new AgentLogRing({ maxBytes: 1 << 20, now: () => T0 });
  for (let i = 0; i < DEFAULT_TAIL_LINES + extra; i++) ring.write(`r${i}\n`);
  const sent: LogsMessage[] = [];
  const sessions = new LogSessions({ deviceId: 'dev', runtime, agentLog: ring, send: async (m) => void sent.push(m), clock, logger, bytesPerSecond: 1 << 30 });
  const start = (session: string, source: Record<string, unknown>) => t.true(sessions.command({ v: 1, id: `c-${session}`, name: 'logs.start', args: { session, source, follow: false, maxBytes: 1 << 20 } }).ok);
  start('svc', { service: 'iris' });
  start('own', { agent: true });
  const linesOf = (session: string) => sent.filter((m) => m.session === session).flatMap((m) => m.lines.map((l) => l.line));
  while (!(['svc', 'own'] as const).every((s) => sent.some((m) => m.session === s && m.end))) await settle();
  t.is(linesOf('svc').length, DEFAULT_TAIL_LINES);
  t.is(linesOf('svc')[0], `c${extra}`);
  t.is(linesOf('own').length, DEFAULT_TAIL_LINES);
  t.is(linesOf('own').at(-1), `r${DEFAULT_TAIL_LINES + extra - 1}`);
});
