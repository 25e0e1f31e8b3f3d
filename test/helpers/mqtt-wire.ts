/**
 * MQTT 3.1.1 packets as bytes, for tests that must do what mqtt.js will not: send packets before the
 * CONNACK (pipelined after the CONNECT), or announce a packet far larger than what follows.
 */
import type { Socket } from 'node:net';

/** The remaining-length varint of a fixed header (MQTT 3.1.1 §2.2.3). */
export function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
};

const packet = (firstByte: number, body: Buffer) => Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body]);

/** A clean-session CONNECT with username and password, keepalive 60 s. */
export function connectPacket(o: { clientId: string; username: string; password: string }): Buffer {
  const variable = Buffer.concat([str('MQTT'), Buffer.from([4, 0x80 | 0x40 | 0x02, 0, 60])]);
  return packet(0x10, Buffer.concat([variable, str(o.clientId), str(o.username), str(o.password)]));
}

/** A QoS 1 PUBLISH. */
export function publishPacket(o: { topic: string; payload: Buffer | string; id: number; retain?: boolean }): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(o.id);
  return packet(0x32 | (o.retain ? 1 : 0), Buffer.concat([str(o.topic), id, Buffer.isBuffer(o.payload) ? o.payload : Buffer.from(o.payload)]));
}

export interface WirePacket {
  type: number;
  body: Buffer;
}

/** Collects the packets the broker sends on `socket` (small ones: CONNACK, PUBACK). */
export function readPackets(socket: Socket): WirePacket[] {
  const packets: WirePacket[] = [];
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      let length = 0;
      let multiplier = 1;
      let i = 1;
      for (; i < pending.length && i <= 4; i++) {
        length += (pending[i]! & 0x7f) * multiplier;
        multiplier *= 128;
        if ((pending[i]! & 0x80) === 0) break;
      }
      if (i >= pending.length || pending.length < i + 1 + length) return;
      packets.push({ type: pending[0]! >> 4, body: pending.subarray(i + 1, i + 1 + length) });
      pending = pending.subarray(i + 1 + length);
    }
  });
  return packets;
}

export const CONNACK = 2;
export const PUBACK = 4;
