/**
 * The broker's pre-buffering guards (hub/broker/packet-size.ts, hub/broker/connecting-limit.ts):
 * packet sizes read from fixed headers split anywhere across chunks, and per-address counting.
 */
import test from 'ava';
import { ConnectingLimit } from '../../hub/broker/connecting-limit.js';
import { PacketSizeReader } from '../../hub/broker/packet-size.js';
import { remainingLength } from '../helpers/mqtt-wire.js';

const packet = (type: number, bodyBytes: number) => Buffer.concat([Buffer.from([type]), remainingLength(bodyBytes), Buffer.alloc(bodyBytes, 0x61)]);

/** Feeds `bytes` in chunks of `size`; the first verdict that is not null, or null. */
function feedInChunks(bytes: Buffer, size: number, limit: () => number): number | null {
  const reader = new PacketSizeReader();
  for (let i = 0; i < bytes.length; i += size) {
    const verdict = reader.feed(bytes.subarray(i, i + size), limit);
    if (verdict !== null) return verdict;
  }
  return null;
}

test('packets within the limit pass, however the bytes are split', (t) => {
  // A PINGREQ (empty body), a 127-byte body (one length byte), a 128-byte body (two), one of 70,000 (three).
  const stream = Buffer.concat([packet(0xc0, 0), packet(0x30, 127), packet(0x30, 128), packet(0x30, 70_000)]);
  for (const size of [1, 2, 3, 7, 64, 4096, stream.length]) t.is(feedInChunks(stream, size, () => 70_004), null, `chunks of ${size}`);
});

test('the first packet announced over the limit is reported with its size, from its header alone', (t) => {
  const header = Buffer.concat([Buffer.from([0x10]), remainingLength(250_000_000)]);
  for (const size of [1, 2, 5]) t.is(feedInChunks(header, size, () => 64 * 1024), 1 + 4 + 250_000_000, `chunks of ${size}`);
  const afterSmallOnes = Buffer.concat([packet(0x30, 10), packet(0xc0, 0), packet(0x30, 1000)]);
  t.is(feedInChunks(afterSmallOnes, 3, () => 500), 1 + 2 + 1000);
});

test('the limit is asked as each header completes, so it can change along the connection', (t) => {
  const reader = new PacketSizeReader();
  let limit = 100;
  t.is(reader.feed(packet(0x10, 90), () => limit), null);
  limit = 10_000;
  t.is(reader.feed(packet(0x30, 5_000), () => limit), null);
  limit = 100;
  t.is(reader.feed(packet(0x30, 5_000), () => limit), 1 + 2 + 5_000);
});

test('a remaining length longer than four bytes is refused as unbounded', (t) => {
  t.is(new PacketSizeReader().feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), () => Number.MAX_SAFE_INTEGER), Number.POSITIVE_INFINITY);
});

test('connections waiting for CONNECT are counted per address; released ones make room once', (t) => {
  const limit = new ConnectingLimit(2);
  t.true(limit.admit('10.0.0.1', 1000));
  t.true(limit.admit('10.0.0.1', 1001));
  t.false(limit.admit('10.0.0.1', 1002), 'a third from the same address');
  t.true(limit.admit('10.0.0.2', 1000), 'another address has its own count');
  limit.release('10.0.0.1', 1000);
  limit.release('10.0.0.1', 1000);
  limit.release('10.0.0.1', 1002);
  t.true(limit.admit('10.0.0.1', 1003), 'room for one');
  t.false(limit.admit('10.0.0.1', 1004), 'releasing twice, or one never admitted, made no more room');
});
