/**
 * The hub's inbox (hub/broker/inbox.ts) over a fake in-memory Broker: what it subscribes to, what
 * reaches the handlers, what is dropped and counted.
 */
import test from 'ava';
import { pino } from 'pino';
import { topicMatches, type Broker, type PublishGate } from '../../hub/broker/broker.js';
import { MAX_TRACKED_DEVICES, OTHER_DEVICES, startInbox, type InboxHandlers } from '../../hub/broker/inbox.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { encodeMessage, type MessageTypes, type StatusMessage } from '../../shared/protocol.js';
import { allDevices, deviceTopic, type Channel } from '../../shared/topics.js';
import { metricsBatch } from '../helpers/telemetry-batches.js';

test('topicMatches (broker.ts) implements + and #', (t) => {
  t.true(topicMatches('a/+/c', 'a/b/c'));
  t.false(topicMatches('a/+/c', 'a/b/x/c'));
  t.false(topicMatches('a/+/c', 'a/b'));
  t.true(topicMatches('a/+/c/d', 'a/b/c/d'));
  t.false(topicMatches('a/+/c', 'a/b/c/d'));
  t.true(topicMatches('a/#', 'a/b/c'));
  t.true(topicMatches('a/#', 'a'));
  t.false(topicMatches('a/b', 'a/c'));
});

/**
 * An in-memory Broker. Unlike broker.ts it does NOT catch what a subscriber throws: that way a test
 * sees exactly what the inbox lets out, and the catch-and-log in broker.ts is tested there.
 */
class FakeBroker implements Broker {
  readonly address = 'fake:0';
  readonly subscriptions: Array<{ filter: string; onMessage: (topic: string, payload: Buffer) => void }> = [];
  readonly gates: Array<{ filter: string; gate: PublishGate }> = [];
  /** What the gates of delivered messages decided, in delivery order. */
  readonly gated: Array<Promise<void>> = [];

  connectedClients(): number {
    throw new Error('FakeBroker.connectedClients is not implemented');
  }
  async subscribe(filter: string, onMessage: (topic: string, payload: Buffer) => void): Promise<void> {
    this.subscriptions.push({ filter, onMessage });
  }
  gate(filter: string, gate: PublishGate): void {
    this.gates.push({ filter, gate });
  }
  async publish(): Promise<void> {
    throw new Error('FakeBroker.publish is not implemented (the inbox must not publish)');
  }
  async close(): Promise<void> {
    throw new Error('FakeBroker.close is not implemented (the inbox does not own the broker)');
  }
  setTls(): void {
    throw new Error('FakeBroker.setTls is not implemented (the inbox does not own the broker)');
  }
  disconnect(): void {
    throw new Error('FakeBroker.disconnect is not implemented (the inbox disconnects nobody)');
  }

  dropIfUnadmitted(): void {
    throw new Error('FakeBroker.dropIfUnadmitted is not implemented (the inbox disconnects nobody)');
  }
  async open(): Promise<void> {
    throw new Error('FakeBroker.open is not implemented (the inbox does not own the broker)');
  }
  onConnectionClosed(): void {
    throw new Error('FakeBroker.onConnectionClosed is not implemented (the inbox follows messages, not connections)');
  }

  filters(): string[] {
    return [...this.subscriptions, ...this.gates].map((s) => s.filter);
  }

  /** Passes matching gates (their outcome lands in `gated`), then delivers to every matching subscription; returns how many matched. */
  deliver(topic: string, payload: Buffer | string): number {
    const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const gates = this.gates.filter((g) => topicMatches(g.filter, topic));
    for (const g of gates) this.gated.push(g.gate(topic, bytes));
    const matching = this.subscriptions.filter((s) => topicMatches(s.filter, topic));
    for (const s of matching) s.onMessage(topic, bytes);
    return gates.length + matching.length;
  }

  async settled(): Promise<PromiseSettledResult<void>[]> {
    return Promise.allSettled(this.gated);
  }
}

/** A real pino logger writing JSON lines into memory. */
function memoryLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void out.push(s) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const facts = {
  hostname: 'h',
  platform: 'linux/amd64',
  arch: 'x64',
  os: { distro: 'd', release: 'r', kernel: 'k' },
  cpus: 2,
  memoryBytes: 1024,
  docker: null,
  agentVersion: '0.1.0',
};
const onlineStatus: StatusMessage = { v: 1, state: 'online', since: '2024-05-01T12:00:00.000Z', facts };
const CSR_PEM = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n';
const VALID: { [C in 'reported' | 'telemetry' | 'status' | 'cmd/ack' | 'csr']: MessageTypes[C] } = {
  reported: { v: 1, observedGeneration: 1, phase: 'converged', services: [] },
  telemetry: metricsBatch({ id: 't1' }),
  status: onlineStatus,
  'cmd/ack': { v: 1, id: 'c1', ok: true, result: {} },
  csr: { v: 1, id: 'r1', purpose: 'gateway', csr: CSR_PEM },
};

type Calls = Array<{ channel: Channel; deviceId: string; message: unknown }>;

function recordingHandlers(calls: Calls): Required<InboxHandlers> {
  return {
    reported: (deviceId, message) => void calls.push({ channel: 'reported', deviceId, message }),
    telemetry: async (deviceId, message) => void calls.push({ channel: 'telemetry', deviceId, message }),
    status: (deviceId, message) => void calls.push({ channel: 'status', deviceId, message }),
    'cmd/ack': (deviceId, message) => void calls.push({ channel: 'cmd/ack', deviceId, message }),
    csr: (deviceId, message) => void calls.push({ channel: 'csr', deviceId, message }),
    logs: (deviceId, message) => void calls.push({ channel: 'logs', deviceId, message }),
  };
}

async function setup(handlers?: InboxHandlers) {
  const broker = new FakeBroker();
  const calls: Calls = [];
  const log = memoryLogger();
  const inbox = await startInbox(broker, handlers ?? recordingHandlers(calls), log.logger);
  return { broker, calls, inbox, log };
}

test('subscribes to the agent channels across all devices, and only those; telemetry through a publish gate', async (t) => {
  const { broker } = await setup();
  t.deepEqual(broker.filters().sort(), [allDevices('cmd/ack'), allDevices('csr'), allDevices('logs'), allDevices('reported'), allDevices('status'), allDevices('telemetry')].sort());
  t.deepEqual(broker.gates.map((g) => g.filter), [allDevices('telemetry')]);
  t.false(broker.filters().includes(allDevices('desired')));
  t.false(broker.filters().includes(allDevices('cmd')));
  t.false(broker.filters().includes(allDevices('cert')));
  t.false(broker.filters().some((f) => f.includes('#')), 'no catch-all subscription');
});

test('a valid status reaches the status handler with the device id parsed from the topic', async (t) => {
  const { broker, calls, inbox } = await setup();
  t.is(broker.deliver(deviceTopic('gw-01', 'status'), encodeMessage('status', onlineStatus)), 1);
  t.deepEqual(calls, [{ channel: 'status', deviceId: 'gw-01', message: onlineStatus }]);
  t.like(inbox.stats(), { received: 1, invalid: 0, invalidByDevice: {} });
});

for (const channel of ['reported', 'telemetry', 'status', 'cmd/ack', 'csr'] as const) {
  test(`a valid ${channel} message reaches only the ${channel} handler`, async (t) => {
    const { broker, calls, inbox } = await setup();
    broker.deliver(deviceTopic('dev-a', channel), encodeMessage(channel, VALID[channel]));
    t.deepEqual(calls, [{ channel, deviceId: 'dev-a', message: VALID[channel] }]);
    t.is(inbox.stats().received, 1);
  });
}

test('cmd/ack is not mistaken for the cmd channel, and a status is not delivered to other handlers', async (t) => {
  const { broker, calls } = await setup();
  broker.deliver('edgeml/v1/dev/dev-a/cmd/ack', encodeMessage('cmd/ack', VALID['cmd/ack']));
  broker.deliver('edgeml/v1/dev/dev-b/status', encodeMessage('status', { v: 1, state: 'offline', reason: 'lost' }));
  t.deepEqual(
    calls.map((c) => [c.channel, c.deviceId]),
    [
      ['cmd/ack', 'dev-a'],
      ['status', 'dev-b'],
    ],
  );
});

test('hub-published channels are not received even if delivered', async (t) => {
  const { broker, calls, inbox } = await setup();
  t.is(broker.deliver(deviceTopic('gw-01', 'desired'), encodeMessage('desired', { v: 1, generation: 1, services: [] })), 0);
  t.is(broker.deliver(deviceTopic('gw-01', 'cmd'), encodeMessage('cmd', { v: 1, id: 'c', name: 'ping' })), 0);
  t.deepEqual(calls, []);
  t.is(inbox.stats().received, 0);
});

test('an invalid payload is dropped, counted per device and logged with the reason', async (t) => {
  const { broker, calls, inbox, log } = await setup();
  broker.deliver(deviceTopic('gw-01', 'status'), 'not json');
  broker.deliver(deviceTopic('gw-01', 'telemetry'), JSON.stringify({ ...VALID.telemetry, v: 2 }));
  broker.deliver(deviceTopic('gw-02', 'reported'), JSON.stringify({ ...VALID.reported, phase: 'bogus' }));
  broker.deliver(deviceTopic('gw-02', 'status'), encodeMessage('status', onlineStatus));
  t.deepEqual(calls.map((c) => c.deviceId), ['gw-02'], 'only the valid message reached a handler');
  t.like(inbox.stats(), { received: 4, invalid: 3, invalidByDevice: { 'gw-01': 2, 'gw-02': 1 }, invalidByChannel: { status: 1, telemetry: 1, reported: 1, 'cmd/ack': 0, csr: 0 } });

  const warnings = log.lines().filter((l) => l.msg === 'dropped invalid mqtt message');
  t.is(warnings.length, 3);
  t.like(warnings[0], { deviceId: 'gw-01', topic: 'edgeml/v1/dev/gw-01/status', invalidFromDevice: 1 });
  t.regex(String(warnings[0]?.reason), /^not JSON/);
  t.like(warnings[1], { deviceId: 'gw-01', invalidFromDevice: 2 });
  t.regex(String(warnings[1]?.reason), /^v: /);
  t.like(warnings[2], { deviceId: 'gw-02', invalidFromDevice: 1 });
  t.regex(String(warnings[2]?.reason), /phase/);
});

test('an oversized payload is dropped and counted', async (t) => {
  const { broker, calls, inbox } = await setup();
  broker.deliver(deviceTopic('gw-01', 'telemetry'), Buffer.alloc(300 * 1024, 0x20));
  t.deepEqual(calls, []);
  t.deepEqual(inbox.stats().invalidByDevice, { 'gw-01': 1 });
});

test('a message valid for another channel is invalid on this one', async (t) => {
  const { broker, calls, inbox } = await setup();
  broker.deliver(deviceTopic('gw-01', 'status'), encodeMessage('telemetry', VALID.telemetry));
  t.deepEqual(calls, []);
  t.is(inbox.stats().invalid, 1);
});

test('topics that match a wildcard but are not valid device topics are ignored, not counted', async (t) => {
  const { broker, calls, inbox } = await setup();
  // '+' matches these ids, but they are not valid device ids.
  t.is(broker.deliver('edgeml/v1/dev/-bad/status', encodeMessage('status', onlineStatus)), 1);
  t.is(broker.deliver('edgeml/v1/dev/has space/status', 'garbage'), 1);
  t.deepEqual(calls, []);
  t.like(inbox.stats(), { received: 0, invalid: 0, invalidByDevice: {} });
});

test('a missing handler for a channel is fine: the message is still validated and counted', async (t) => {
  const { broker, inbox } = await setup({});
  t.notThrows(() => broker.deliver(deviceTopic('gw-01', 'status'), encodeMessage('status', onlineStatus)));
  broker.deliver(deviceTopic('gw-01', 'telemetry'), '{}');
  t.like(inbox.stats(), { received: 2, invalid: 1, invalidByDevice: { 'gw-01': 1 } });
});

// The inbox does not catch handler errors itself: they propagate to the broker's subscription
// callback, whose try/catch in broker.ts logs them ("a handler that throws is logged, never fatal").
// What the inbox guarantees is that such a throw leaves it consistent and later messages still flow.
test('a throwing handler propagates to the broker callback and does not break later messages', async (t) => {
  const broker = new FakeBroker();
  const seen: string[] = [];
  const inbox = await startInbox(
    broker,
    {
      status: (deviceId) => {
        seen.push(deviceId);
        if (deviceId === 'bad') throw new Error('handler exploded');
      },
    },
    pino({ level: 'silent' }),
  );
  t.throws(() => broker.deliver(deviceTopic('bad', 'status'), encodeMessage('status', onlineStatus)), { message: 'handler exploded' });
  t.notThrows(() => broker.deliver(deviceTopic('good', 'status'), encodeMessage('status', onlineStatus)));
  t.deepEqual(seen, ['bad', 'good']);
  t.like(inbox.stats(), { received: 2, invalid: 0, invalidByDevice: {} }, 'a handler failure is not an invalid message');
});

test('stats() returns a copy', async (t) => {
  const { broker, inbox } = await setup();
  broker.deliver(deviceTopic('gw-01', 'status'), 'x');
  const snapshot = inbox.stats();
  snapshot.received = 100;
  snapshot.invalid = 100;
  snapshot.invalidByDevice['gw-01'] = 100;
  snapshot.invalidByDevice['other'] = 5;
  t.deepEqual(inbox.stats(), { received: 1, invalid: 1, invalidByDevice: { 'gw-01': 1 }, invalidByChannel: { reported: 0, telemetry: 0, status: 1, 'cmd/ack': 0, csr: 0, logs: 0 } });
  t.not(inbox.stats(), inbox.stats());
});

// Regression: per-device counts lived in a plain object, so ids such as "constructor" read an
// inherited function instead of 0.
test('invalid counts are numbers even for device ids named like Object.prototype members', async (t) => {
  const { broker, inbox } = await setup();
  for (const id of ['constructor', 'toString', 'valueOf', 'hasOwnProperty']) broker.deliver(deviceTopic(id, 'status'), 'x');
  t.deepEqual(inbox.stats().invalidByDevice, { constructor: 1, toString: 1, valueOf: 1, hasOwnProperty: 1 });
});

test('per-device invalid counts are bounded: made-up device ids past the cap share one entry', async (t) => {
  const { broker, inbox } = await setup();
  for (let i = 0; i < MAX_TRACKED_DEVICES + 5; i++) broker.deliver(deviceTopic(`fake-${i}`, 'status'), 'x');
  broker.deliver(deviceTopic('fake-0', 'status'), 'x');
  const stats = inbox.stats();
  t.is(stats.invalid, MAX_TRACKED_DEVICES + 6);
  t.is(Object.keys(stats.invalidByDevice).length, MAX_TRACKED_DEVICES + 1);
  t.is(stats.invalidByDevice[OTHER_DEVICES], 5);
  t.is(stats.invalidByDevice['fake-0'], 2, 'a device already tracked keeps its own count');
});

test('the telemetry gate settles only once the handler has: the broker acknowledges after that', async (t) => {
  const broker = new FakeBroker();
  let finish!: () => void;
  const handled = new Promise<void>((resolve) => (finish = resolve));
  await startInbox(broker, { telemetry: () => handled }, pino({ level: 'silent' }));
  broker.deliver(deviceTopic('gw-01', 'telemetry'), encodeMessage('telemetry', VALID.telemetry));
  let gateDone = false;
  void broker.gated[0]!.then(() => (gateDone = true));
  await new Promise((resolve) => setImmediate(resolve));
  t.false(gateDone, 'still storing: no acknowledgement yet');
  finish();
  await broker.gated[0];
  t.true(gateDone);
});

test('with no telemetry handler, a valid batch is not acknowledged: nothing stored it', async (t) => {
  const broker = new FakeBroker();
  await startInbox(broker, { status: () => undefined }, pino({ level: 'silent' }));
  broker.deliver(deviceTopic('gw-01', 'telemetry'), encodeMessage('telemetry', VALID.telemetry));
  const [gated] = await broker.settled();
  t.is(gated?.status, 'rejected');
});

test('a telemetry batch its handler refuses as invalid is counted per device and acknowledged; a failed store is not', async (t) => {
  const broker = new FakeBroker();
  const { logger, lines } = memoryLogger();
  const inbox = await startInbox(
    broker,
    {
      telemetry: async (deviceId) => {
        if (deviceId === 'bad') throw new EdgemlError(ErrorCodes.MESSAGE_INVALID, 'from is after to');
        if (deviceId === 'disk') throw new Error('EIO');
      },
    },
    logger,
  );
  for (const id of ['bad', 'disk', 'good']) broker.deliver(deviceTopic(id, 'telemetry'), encodeMessage('telemetry', VALID.telemetry));
  const [bad, disk, good] = await broker.settled();
  t.is(bad?.status, 'fulfilled', 'refused as invalid: acknowledged, never sent again');
  t.is(disk?.status, 'rejected', 'a failed store withholds the acknowledgement');
  t.is(good?.status, 'fulfilled');
  t.like(inbox.stats(), { received: 3, invalid: 1, invalidByDevice: { bad: 1 }, invalidByChannel: { telemetry: 1 } });
  t.like(lines().find((l) => l.msg === 'dropped invalid mqtt message'), { deviceId: 'bad', reason: 'from is after to' });
});
