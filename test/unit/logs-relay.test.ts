import test from 'ava';
import { pino } from 'pino';
import { LogRelay, type LogEntry } from '../../hub/logs/log-relay.js';
import { isEdgemlError } from '../../shared/errors.js';
import { decodeMessage, type Command, type LogsMessage } from '../../shared/protocol.js';
import { deviceBrokerAuth } from '../../hub/broker/auth.js';
import { deviceTopic } from '../../shared/topics.js';
import { ManualClock } from '../helpers/fake-clock.js';

const logger = pino({ level: 'silent' });
const settle = () => new Promise((r) => setImmediate(r));
const line = (text: string) => ({ ts: '2026-01-01T00:00:00.000Z', source: 'iris', replica: 1, stream: 'stdout' as const, line: text });

function relay(o: { online?: boolean; answer?: (cmd: Command) => 'ok' | 'none' | { code: string } } = {}) {
  const clock = new ManualClock(0);
  const sent: { device: string; cmd: Command }[] = [];
  let n = 0;
  const r: LogRelay = new LogRelay({
    sendCommand: async (device, cmd) => {
      sent.push({ device, cmd });
      const answer = o.answer?.(cmd) ?? 'ok';
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

async function drain(stream: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

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
