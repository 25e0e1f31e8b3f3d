import test from 'ava';
import { pino } from 'pino';
import { BYTES_SLACK, HEARTBEAT_MS, LogRelay, MAX_SEQ_AHEAD, type LogEntry } from '../../hub/logs/log-relay.js';
import { isEdgemlError } from '../../shared/errors.js';
import { decodeMessage, LOG_SESSION_LIMITS, type Command, type LogsMessage } from '../../shared/protocol.js';
import { deviceBrokerAuth } from '../../hub/broker/auth.js';
import { deviceTopic } from '../../shared/topics.js';
import { ManualClock } from '../helpers/fake-clock.js';

const logger = pino({ level: 'silent' });
const settle = () => new Promise((r) => setImmediate(r));
const line = (text: string) => ({ ts: '2026-01-01T00:00:00.000Z', source: 'iris', replica: 1, stream: 'stdout' as const, line: text });

function relay(o: { online?: boolean; answer?: (cmd: Command, r: LogRelay) => 'ok' | 'none' | { code: string } } = {}) {
  const clock = new ManualClock(0);
  const sent: { device: string; cmd: Command }[] = [];
  let n = 0;
  const r: LogRelay = new LogRelay({
    sendCommand: async (device, cmd) => {
      sent.push({ device, cmd });
      const answer = o.answer?.(cmd, r) ?? 'ok';
      if (answer === 'none' || cmd.name !== 'logs.start') return;
      queueMicrotask(() => r.ack(device, answer === 'ok' ? { v: 1, id: cmd.id, ok: true, result: {} } : { v: 1, id: cmd.id, ok: false, error: { code: answer.code, message: 'no' } }));
    },
    isOnline: () => o.online ?? true,
    clock,
    logger,
    newId: () => `id${n++}`,
  });
  return { r, clock, sent };
}

const sessionOf = (sent: { cmd: Command }[]) => (sent.find((s) => s.cmd.name === 'logs.start')!.cmd.args as { session: string }).session;

/** The stream's entries, heartbeats (null) left out. */
async function drain(stream: AsyncIterable<LogEntry | null>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of stream) if (e !== null) out.push(e);
  return out;
}

const msgFor = (session: string) => (seq: number, lines: string[], end?: LogsMessage['end']): LogsMessage => ({ v: 1, session, seq, lines: lines.map(line), ...(end ? { end } : {}) });

test('lines reach the reader in seq order whatever order they come in, duplicates and other devices ignored, until end', async (t) => {
  const { r, sent } = relay();
  const stream = await r.open('dev', { source: { service: 'iris' }, follow: true });
  const session = sessionOf(sent);
  t.like(sent[0]!.cmd.args, { source: { service: 'iris' }, follow: true, maxBytes: 1024 * 1024 });
  const msg = (seq: number, lines: string[], end?: LogsMessage['end']): LogsMessage => ({ v: 1, session, seq, lines: lines.map(line), ...(end ? { end } : {}) });
  const reading = drain(stream);
  r.message('dev', msg(1, ['b']));
  r.message('other', msg(0, ['forged']));
  r.message('dev', msg(0, ['a']));
  r.message('dev', msg(0, ['a again']));
  r.message('dev', msg(2, ['c'], { reason: 'limit' }));
  const got = await reading;
  t.deepEqual(got, [line('a'), line('b'), line('c'), { end: { reason: 'limit' } }]);
  t.false(sent.some((s) => s.cmd.name === 'logs.stop'), 'the device ended it: nothing to stop');
  t.is(r.countFor('dev'), 0);
});

test('the reader going away stops the session on the device; keepalives go while it reads', async (t) => {
  const { r, sent, clock } = relay();
  const stream = await r.open('dev', { source: { agent: true }, follow: true });
  clock.advance(25_000);
  t.is(sent.filter((s) => s.cmd.name === 'logs.keepalive').length, 2);
  stream.close();
  await settle();
  t.deepEqual(sent.at(-1)!.cmd.args, { session: sessionOf(sent) });
  t.is(sent.at(-1)!.cmd.name, 'logs.stop');
  clock.advance(60_000);
  t.is(sent.filter((s) => s.cmd.name === 'logs.keepalive').length, 2, 'no keepalive after the end');
});

test('offline device, a fifth session, a refusal and no answer are 409s; offline mid-stream ends with device-offline', async (t) => {
  const offline = relay({ online: false });
  const e1 = await t.throwsAsync(offline.r.open('dev', { source: { agent: true }, follow: false }));
  t.true(isEdgemlError(e1) && e1.httpStatus === 409 && e1.code === 'HUB_E_DEVICE_OFFLINE');

  const { r } = relay();
  const open = await Promise.all([1, 2, 3, 4].map(() => r.open('dev', { source: { agent: true }, follow: true })));
  const e2 = await t.throwsAsync(r.open('dev', { source: { agent: true }, follow: true }));
  t.true(isEdgemlError(e2) && e2.httpStatus === 409 && e2.code === 'HUB_E_LOG_SESSIONS_FULL');
  await t.notThrowsAsync(r.open('other-device', { source: { agent: true }, follow: true }));
  const reading = drain(open[0]!);
  r.deviceOffline('dev');
  t.deepEqual((await reading).at(-1), { end: { reason: 'device-offline', message: 'device dev went offline' } });
  t.is(r.countFor('dev'), 0);

  const refusing = relay({ answer: () => ({ code: 'AGENT_E_LOG_SESSIONS_FULL' }) });
  const e3 = await t.throwsAsync(refusing.r.open('dev', { source: { agent: true }, follow: true }));
  t.true(isEdgemlError(e3) && e3.code === 'HUB_E_LOG_SESSIONS_FULL');

  const silent = relay({ answer: () => 'none' });
  const pending = silent.r.open('dev', { source: { agent: true }, follow: true });
  await settle();
  silent.clock.advance(10_000);
  const e4 = await t.throwsAsync(pending);
  t.true(isEdgemlError(e4) && e4.httpStatus === 409 && /did not answer/.test(e4.message));
  t.is(silent.r.countFor('dev'), 0);
});

test('a session the device never ends ends on the hub after the time cap and a grace', async (t) => {
  const { r, clock } = relay();
  const reading = drain(await r.open('dev', { source: { agent: true }, follow: true }));
  clock.advance(10 * 60_000 + 15_000);
  t.is(((await reading).at(-1) as { end: { reason: string } }).end.reason, 'timeout');
});

test('logs messages are validated: bad shapes, oversized payloads and non-JSON are refused (dropped by the inbox)', (t) => {
  const good = { v: 1, session: 's1', seq: 0, lines: [line('x')] };
  t.true(decodeMessage('logs', JSON.stringify(good)).ok);
  t.true(decodeMessage('logs', JSON.stringify({ ...good, end: { reason: 'done' } })).ok);
  for (const bad of [{ ...good, seq: -1 }, { ...good, session: 'a/b' }, { ...good, lines: [{ ...line('x'), stream: 'stdin' }] }, { ...good, end: { reason: 'whatever' } }, { ...good, extra: 1 }, { ...good, lines: [{ ...line('x'), line: 'y'.repeat(9000) }] }]) {
    t.false(decodeMessage('logs', JSON.stringify(bad)).ok, JSON.stringify(bad).slice(0, 80));
  }
  t.false(decodeMessage('logs', '{').ok);
  t.false(decodeMessage('logs', Buffer.alloc(300 * 1024, 32)).ok);
});

test('the broker lets a device publish logs on its own topic only, and subscribe to nobody\'s logs', (t) => {
  const auth = deviceBrokerAuth({ verifyToken: () => true, tokenHashValid: () => true, isActive: () => true });
  const me = { deviceId: 'dev-1' };
  t.true(auth.canPublish(me, deviceTopic('dev-1', 'logs')));
  t.false(auth.canPublish(me, deviceTopic('dev-2', 'logs')));
  t.false(auth.canSubscribe(me, deviceTopic('dev-1', 'logs')));
  t.true(auth.canSubscribe(me, deviceTopic('dev-1', 'cmd')));
});

test('a device cannot make the hub hold messages too far ahead: seq past nextSeq + MAX_SEQ_AHEAD ends the session with error and stops it on the device', async (t) => {
  const { r, sent } = relay();
  const stream = await r.open('dev', { source: { agent: true }, follow: true });
  const msg = msgFor(sessionOf(sent));
  const reading = drain(stream);
  for (let seq = 1; seq <= MAX_SEQ_AHEAD; seq++) r.message('dev', msg(seq, [`ahead ${seq}`]));
  t.is(r.countFor('dev'), 1, 'up to MAX_SEQ_AHEAD ahead may wait');
  r.message('dev', msg(MAX_SEQ_AHEAD + 1, ['too far']));
  const got = await reading;
  t.deepEqual(got, [{ end: { reason: 'error', message: `the device sent log messages out of order (seq ${MAX_SEQ_AHEAD + 1}, expected 0)` } }]);
  t.is(r.countFor('dev'), 0);
  await settle();
  t.is(sent.at(-1)!.cmd.name, 'logs.stop');
});

test('the hub holds a session to its byte cap: past maxBytes + BYTES_SLACK it ends with limit, the lines before it still read', async (t) => {
  const { r, sent } = relay();
  const stream = await r.open('dev', { source: { service: 'iris' }, follow: true });
  const msg = msgFor(sessionOf(sent));
  const text = 'q'.repeat(8000);
  const perMessage = 8 * Buffer.byteLength(JSON.stringify(line(text)));
  const fits = Math.floor((LOG_SESSION_LIMITS.maxBytes + BYTES_SLACK) / perMessage);
  // Nobody reads yet: everything the device sends waits in the hub.
  for (let seq = 0; seq <= fits + 5; seq++) r.message('dev', msg(seq, Array.from({ length: 8 }, () => text)));
  const got = await drain(stream);
  t.is(got.length, fits * 8 + 1);
  t.deepEqual(got.at(-1), { end: { reason: 'limit', message: `the device sent more than the session's ${LOG_SESSION_LIMITS.maxBytes} bytes` } });
  await settle();
  t.is(sent.at(-1)!.cmd.name, 'logs.stop');
});

test("a device's own `stopped` (its agent stopping) reaches the reader as device-offline", async (t) => {
  const { r, sent } = relay();
  const stream = await r.open('dev', { source: { agent: true }, follow: true });
  const reading = drain(stream);
  r.message('dev', msgFor(sessionOf(sent))(0, ['last'], { reason: 'stopped', message: 'the agent is stopping' }));
  t.deepEqual(await reading, [line('last'), { end: { reason: 'device-offline', message: 'the agent is stopping' } }]);
  const bare = relay();
  const other = drain(await bare.r.open('dev', { source: { agent: true }, follow: true }));
  bare.r.message('dev', msgFor(sessionOf(bare.sent))(0, [], { reason: 'stopped' }));
  t.deepEqual(await other, [{ end: { reason: 'device-offline', message: 'device dev stopped the session' } }]);
});

test('a session the device ended before its ack arrived arms no keepalive or deadline', async (t) => {
  const { r, sent, clock } = relay({
    answer: (cmd, relayed) => {
      if (cmd.name === 'logs.start') relayed.message('dev', msgFor((cmd.args as { session: string }).session)(0, ['only'], { reason: 'done' }));
      return 'ok';
    },
  });
  const stream = await r.open('dev', { source: { agent: true }, follow: false });
  t.is(clock.pending(), 0, 'no timer left behind');
  t.deepEqual(await drain(stream), [line('only'), { end: { reason: 'done' } }]);
  clock.advance(20 * 60_000);
  t.false(sent.some((s) => s.cmd.name === 'logs.keepalive'));
});

test('a quiet follow gets a heartbeat (null) every HEARTBEAT_MS on the clock; lines and the end still come', async (t) => {
  const { r, sent, clock } = relay();
  const stream = await r.open('dev', { source: { service: 'iris' }, follow: true });
  const it = stream[Symbol.asyncIterator]();
  const first = it.next();
  await settle();
  clock.advance(HEARTBEAT_MS - 1);
  let settled = false;
  void first.then(() => (settled = true));
  await settle();
  t.false(settled, 'nothing before HEARTBEAT_MS');
  clock.advance(1);
  t.deepEqual(await first, { done: false, value: null });
  const second = it.next();
  await settle();
  clock.advance(HEARTBEAT_MS);
  t.deepEqual(await second, { done: false, value: null });
  const third = it.next();
  await settle();
  r.message('dev', msgFor(sessionOf(sent))(0, ['news']));
  t.deepEqual(await third, { done: false, value: line('news') });
  stream.close();
  const last = (await it.next()).value;
  t.true(last !== null && 'end' in last, 'ends');
  t.is(clock.pending(), 0, 'no heartbeat timer left behind');
});
