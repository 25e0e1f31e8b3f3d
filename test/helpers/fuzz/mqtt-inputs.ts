/**
 * Inputs for fuzzing an MQTT listener: byte streams that are not MQTT, CONNECTs that are almost
 * right, valid device messages to mutate (shared/protocol.ts), and topics a device must not reach.
 * Framing comes from test/helpers/mqtt-wire.ts.
 */
import { connect, type Socket } from 'node:net';
import { deviceTopic } from '../../../shared/topics.js';
import type { ReportedState } from '../../../shared/protocol.js';
import { connectPacket, remainingLength } from '../mqtt-wire.js';
import { capturesBatch, metricsBatch } from '../telemetry-batches.js';
import type { Random } from './random.js';
import { onlineStatus } from '../device-status.js';

const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length & 0xffff);
  return Buffer.concat([len, b]);
};

/** A packet with any first byte, any body, and (if given) a remaining length that lies. */
export function rawPacket(firstByte: number, body: Buffer, announced = body.length): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(announced), body]);
}

export interface Credentials {
  clientId: string;
  username: string;
  password: string;
}

/** A CONNECT with one thing wrong (or, for `wrong-secret` and friends, refused for who it claims to be). */
export function malformedConnect(rng: Random, creds: Credentials): { kind: string; bytes: Buffer } {
  const valid = connectPacket(creds);
  const body = valid.subarray(1 + remainingLength(valid.length - 2).length);
  const variants: Array<() => { kind: string; bytes: Buffer }> = [
    () => ({ kind: 'flipped byte', bytes: (() => { const b = Buffer.from(valid); const i = rng.int(0, b.length - 1); b[i] = b[i]! ^ (1 << rng.int(0, 7)); return b; })() }),
    () => ({ kind: 'truncated', bytes: valid.subarray(0, rng.int(1, valid.length - 1)) }),
    () => ({ kind: 'protocol name', bytes: rawPacket(0x10, Buffer.concat([str(rng.pick(['MQIsdp', 'mqtt', 'HTTP', '', 'MQTT\u0000'])), body.subarray(6)])) }),
    () => ({ kind: 'protocol level', bytes: rawPacket(0x10, Buffer.concat([body.subarray(0, 6), Buffer.from([rng.pick([0, 3, 5, 6, 255])]), body.subarray(7)])) }),
    () => ({ kind: 'reserved flag', bytes: rawPacket(0x10, Buffer.concat([body.subarray(0, 7), Buffer.from([body[7]! | 0x01]), body.subarray(8)])) }),
    () => ({ kind: 'fixed header flags', bytes: rawPacket(0x10 | rng.int(1, 15), body) }),
    () => ({ kind: 'will without topic', bytes: rawPacket(0x10, Buffer.concat([body.subarray(0, 7), Buffer.from([body[7]! | 0x04 | 0x18]), body.subarray(8)])) }),
    () => ({ kind: 'five-byte length', bytes: Buffer.concat([Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]), body]) }),
    () => ({ kind: 'length longer than body', bytes: rawPacket(0x10, body, body.length + rng.int(1, 100)) }),
    () => ({ kind: 'length shorter than body', bytes: rawPacket(0x10, body, rng.int(0, body.length - 1)) }),
    () => ({ kind: 'huge client id', bytes: connectPacket({ ...creds, clientId: 'c'.repeat(rng.int(1000, 65_535)) }) }),
    () => ({ kind: 'invalid utf-8 client id', bytes: rawPacket(0x10, Buffer.concat([body.subarray(0, 10), str(Buffer.from([0xc3, 0x28, 0xff, 0x00])), body.subarray(12 + creds.clientId.length)])) }),
    () => ({ kind: 'wrong secret', bytes: connectPacket({ ...creds, password: `${creds.password.slice(0, -1)}x` }) }),
    () => ({ kind: 'client id not the username', bytes: connectPacket({ ...creds, clientId: `${creds.clientId}-other` }) }),
    () => ({ kind: 'no credentials', bytes: rawPacket(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 60]), str(creds.clientId)])) }),
    () => ({ kind: 'password flag without username', bytes: rawPacket(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x42, 0, 60]), str(creds.clientId), str(creds.password)])) }),
    () => ({ kind: 'wildcard client id', bytes: connectPacket({ clientId: '+/#', username: '+/#', password: creds.password }) }),
    () => ({ kind: 'random body', bytes: rawPacket(0x10, rng.bytes(rng.int(0, 512))) }),
  ];
  return rng.pick(variants)();
}

/** Bytes that are not a CONNECT at all, as the first thing on a connection. */
export function notConnect(rng: Random): { kind: string; bytes: Buffer } {
  const variants: Array<() => { kind: string; bytes: Buffer }> = [
    () => ({ kind: 'random bytes', bytes: rng.bytes(rng.int(1, 4096)) }),
    () => ({ kind: 'http', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') }),
    () => ({ kind: 'tls hello', bytes: Buffer.from('160301020001000100', 'hex') }),
    () => ({ kind: 'publish first', bytes: rawPacket(0x30, Buffer.concat([str('edgeml/v1/dev/x/telemetry'), Buffer.from('{}')])) }),
    () => ({ kind: 'subscribe first', bytes: rawPacket(0x82, Buffer.concat([Buffer.from([0, 1]), str('#'), Buffer.from([1])])) }),
    () => ({ kind: 'pingreq first', bytes: Buffer.from([0xc0, 0x00]) }),
    () => ({ kind: 'zero bytes', bytes: Buffer.alloc(rng.int(1, 2048)) }),
    () => ({ kind: 'reserved type', bytes: rawPacket(rng.pick([0x00, 0xf0]), rng.bytes(rng.int(0, 64))) }),
  ];
  return rng.pick(variants)();
}

/** Valid messages for each channel a device publishes, to start mutations from. */
export function validDeviceMessages(now: Date): Record<'status' | 'reported' | 'telemetry' | 'cmd/ack', unknown[]> {
  const status = onlineStatus('fuzz', { since: now, gateway: 'http://127.0.0.1:8090' });
  const reported: ReportedState = {
    v: 1,
    observedGeneration: 0,
    phase: 'converged',
    services: [{ name: 'iris', revision: 1, image: 'img', phase: 'running', servingRevision: 1, progress: null, error: null }],
  };
  const to = new Date(now.getTime() - 60_000);
  const metrics = metricsBatch({ id: 'fz-m', from: new Date(to.getTime() - 10_000).toISOString(), to: to.toISOString() });
  const captures = capturesBatch({ id: 'fz-c' });
  return {
    status: [status, { v: 1, state: 'offline', reason: 'shutdown' }],
    reported: [reported],
    telemetry: [metrics, captures],
    'cmd/ack': [{ v: 1, id: 'c-1', ok: true, result: { pong: true } }],
  };
}

/** Topics a device may not publish to, and some no broker should choke on. */
export function foreignTopics(own: string, other: string): string[] {
  return [
    deviceTopic(other, 'telemetry'),
    deviceTopic(other, 'status'),
    deviceTopic(own, 'desired'),
    deviceTopic(own, 'cmd'),
    `edgeml/v1/dev/${own}/telemetry/extra`,
    `edgeml/v1/dev/${own}`,
    'edgeml/v1/dev/+/telemetry',
    '#',
    '$SYS/broker/uptime',
    '',
    '/',
    `edgeml/v1/dev/${own}/tele\u0000metry`,
    't'.repeat(60_000),
  ];
}

function drained(socket: Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/**
 * Writes `chunks` to a fresh connection (one after another, stopping early if the broker closes
 * it; `await-answer` waits, up to `lingerMs`, for the broker to send something, e.g. a CONNACK),
 * then waits up to `lingerMs` for the broker to close it, and closes it if not.
 * Returns whether the broker closed it, how many bytes were written before, and what it sent back.
 */
export async function rawSession(address: string, chunks: Array<Buffer | 'await-answer'>, lingerMs: number): Promise<{ closedByBroker: boolean; written: number; received: Buffer }> {
  const at = address.lastIndexOf(':');
  const socket: Socket = connect(Number(address.slice(at + 1)), address.slice(0, at));
  const received: Buffer[] = [];
  const waiting: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    received.push(d);
    waiting.splice(0).forEach((wake) => wake());
  });
  const answered = (timeoutMs: number) =>
    new Promise<void>((resolve) => {
      if (received.length > 0 || socket.destroyed) return resolve();
      const timer = setTimeout(resolve, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      waiting.push(wake);
      socket.once('close', wake);
    });
  socket.on('error', () => {});
  // Closed by the broker: any close this function did not ask for (a FIN or a reset).
  let closedByUs = false;
  let closedByBroker = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closedByBroker = !closedByUs;
      resolve();
    }),
  );
  socket.once('end', () => (closedByBroker = true));
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', resolve);
  });
  let written = 0;
  for (const chunk of chunks) {
    if (socket.destroyed || socket.writableEnded || closedByBroker) break;
    if (chunk === 'await-answer') {
      await answered(lingerMs);
      continue;
    }
    written += chunk.length;
    // Backpressure: a trickle must not pile up in this process either; a broker that stops
    // reading for `lingerMs` ends the writing.
    if (!socket.write(chunk) && !(await drained(socket, lingerMs))) break;
  }
  const timer = setTimeout(() => {
    closedByUs = !closedByBroker;
    socket.destroy();
  }, lingerMs);
  await closed;
  clearTimeout(timer);
  return { closedByBroker, written, received: Buffer.concat(received) };
}
