/**
 * The hub's embedded MQTT broker: aedes on a TCP or TLS listener, with authentication and
 * authorization delegated to a `BrokerAuth`.
 *
 * When a QoS 1 PUBACK goes out (aedes 1.2, lib/handlers/publish.js): `authorizePublish` runs
 * first, then the PUBACK is written, and only then is the message handed to subscribers (mqemitter).
 * So a subscriber that waits before calling `done` cannot hold back the PUBACK: it only holds one of
 * mqemitter's `concurrency` slots (100, shared by every message of every client), so slow handling
 * there would make every device's status and reported state queue behind it. Work that must finish
 * before the acknowledgement (storing telemetry) runs in a publish gate instead, inside
 * `authorizePublish`: it holds back only that connection (aedes reads no further packets from it
 * meanwhile), and when it fails the connection is dropped without a PUBACK (MQTT 3.1.1 has no
 * negative PUBACK), so the device publishes again after it reconnects. Subscribers stay
 * synchronous, and mqemitter's default concurrency is enough for them.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import type { Logger } from '../../shared/logger.js';
import { formatHostPort, type HostPort } from '../../shared/address.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { BrokerAuth, BrokerIdentity } from './auth.js';

/** Settles before the broker acknowledges a device's publish; a rejection withholds the acknowledgement. */
export type PublishGate = (topic: string, payload: Buffer) => Promise<void>;

export interface Broker {
  readonly address: string;
  connectedClients(): number;
  /** Delivers every message matching `filter` published from now on (no retained replay). */
  subscribe(filter: string, onMessage: (topic: string, payload: Buffer) => void): Promise<void>;
  /**
   * Runs `gate` on every device publish matching `filter` after it is authorized and before it is
   * acknowledged or delivered. If it rejects, the device's connection is dropped without a PUBACK
   * and the message goes nowhere; the device sends it again once reconnected.
   */
  gate(filter: string, gate: PublishGate): void;
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  /**
   * Drops the connection of this client id, if any (a revoked device). One still connecting is
   * dropped once connected if `auth` no longer admits it.
   */
  disconnect(clientId: string): void;
  close(): Promise<void>;
}

export interface BrokerTls {
  cert: Buffer;
  key: Buffer;
}

// aedes' AuthErrorCode is a const enum we cannot import under isolatedModules.
const BAD_USERNAME_OR_PASSWORD = 4;

/** MQTT filter matching: `+` is one level, a trailing `#` the rest. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i === f.length - 1;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

export async function startBroker(opts: { listen: HostPort; auth: BrokerAuth; logger: Logger; tls?: BrokerTls | undefined }): Promise<Broker> {
  const { auth, logger } = opts;
  const identities = new WeakMap<Client, BrokerIdentity>();
  const gates: Array<{ filter: string; gate: PublishGate }> = [];
  const passGates = async (packet: { topic: string; payload: Buffer | string }): Promise<void> => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    for (const g of gates) if (topicMatches(g.filter, packet.topic)) await g.gate(packet.topic, payload);
  };
  const aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      auth.authenticate(client.id, username, password).then(
        (identity) => {
          if (!identity) {
            logger.warn({ clientId: client.id, username }, 'mqtt connection refused: bad credentials');
            const err = Object.assign(new Error('bad username or password'), { returnCode: BAD_USERNAME_OR_PASSWORD });
            done(err, false);
            return;
          }
          identities.set(client, identity);
          done(null, true);
        },
        (err: unknown) => {
          logger.error({ err, clientId: client.id }, 'mqtt authentication failed');
          done(Object.assign(new Error('authentication unavailable'), { returnCode: 3 }), false);
        },
      );
    },
    authorizePublish: (client, packet, callback) => {
      // client is null for messages the hub publishes itself.
      const identity = client ? identities.get(client) : undefined;
      if (client && (!identity || !auth.canPublish(identity, packet.topic))) {
        logger.warn({ clientId: client.id, topic: packet.topic }, 'mqtt publish denied');
        callback(new Error('publish not authorized'));
        return;
      }
      if (!client) {
        callback(null);
        return;
      }
      passGates(packet).then(
        () => callback(null),
        (err: unknown) => {
          logger.error({ err, clientId: client.id, topic: packet.topic }, 'mqtt publish not accepted: dropping the connection so the device sends it again');
          callback(err instanceof Error ? err : new Error(String(err)));
        },
      );
    },
    authorizeSubscribe: (client, sub, callback) => {
      const identity = identities.get(client);
      if (!identity || !auth.canSubscribe(identity, sub.topic)) {
        logger.warn({ clientId: client.id, topic: sub.topic }, 'mqtt subscribe denied');
        // A null subscription is refused in the SUBACK (0x80) without dropping the connection.
        callback(null, null);
        return;
      }
      callback(null, sub);
    },
    // A revoked device that is still connected (its connection being dropped) gets nothing more.
    authorizeForward: (client, packet) => {
      const identity = identities.get(client);
      return identity && auth.admitted(identity) ? packet : null;
    },
  });
  aedes.on('clientError', (client, err) => logger.debug({ clientId: client.id, err: err.message }, 'mqtt client error'));
  aedes.on('connectionError', (client, err) => logger.debug({ clientId: client?.id, err: err.message }, 'mqtt connection error'));
  aedes.on('client', (client) => logger.debug({ clientId: client.id }, 'mqtt client connected'));
  // `disconnect` finds only registered clients: one revoked after it authenticated but before aedes
  // registered it was missed there, and is dropped here once its CONNECT has been answered.
  aedes.on('clientReady', (client) => {
    const identity = identities.get(client);
    if (identity && !auth.admitted(identity)) {
      logger.warn({ clientId: client.id }, 'mqtt client dropped: revoked while it was connecting');
      client.close();
    }
  });
  aedes.on('clientDisconnect', (client) => logger.debug({ clientId: client.id }, 'mqtt client disconnected'));

  const server: Server = opts.tls ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, aedes.handle) : createServer(aedes.handle);
  if (opts.tls) {
    // A client that fails the handshake (wrong CA, plain TCP) is its problem, not the broker's.
    server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'mqtt tls handshake failed'));
  }
  // aedes only closes clients that completed CONNECT; a socket that never sent one (a port probe)
  // would hold server.close() until aedes' connect timeout. Shutdown destroys what is left.
  const sockets = new Set<Socket>();
  // 'connection' fires for TLS too, before the handshake: a socket stuck in it is tracked as well.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.listen.port, opts.listen.host, () => resolve());
    });
  } catch (err) {
    // aedes runs a heartbeat timer that would keep a failed process alive.
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw new EdgemlError(ErrorCodes.HUB_LISTEN_FAILED, `mqtt broker cannot listen on ${formatHostPort(opts.listen)}: ${(err as Error).message}`, { cause: err });
  }
  const bound = server.address() as AddressInfo;
  const address = formatHostPort({ host: bound.address, port: bound.port });

  return {
    address,
    connectedClients: () => aedes.connectedClients,
    subscribe: (filter, onMessage) =>
      new Promise<void>((resolve) => {
        aedes.subscribe(
          filter,
          (packet: AedesPublishPacket, done: () => void) => {
            try {
              onMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
            } catch (err) {
              logger.error({ err, topic: packet.topic }, 'mqtt message handler threw');
            }
            done();
          },
          resolve,
        );
      }),
    gate: (filter, gate) => void gates.push({ filter, gate }),
    publish: (topic, payload, { qos, retain }) =>
      new Promise<void>((resolve, reject) => {
        aedes.publish({ cmd: 'publish', topic, payload, qos, retain, dup: false }, (err) => (err ? reject(err) : resolve()));
      }),
    disconnect: (clientId) => {
      const client = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[clientId];
      client?.close();
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
