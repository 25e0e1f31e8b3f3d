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
 *
 * Nothing is admitted before `open()`: the hub wires every handler and gate first, so no device's
 * status is missed and no batch is acknowledged that nothing stored. Before CONNECT completes, a
 * connection is cheap to hold: packets are capped at `PRE_CONNECT_MAX_PACKET_BYTES` (from their
 * fixed header, before their body is buffered; packet-size.ts), an address has at most
 * `maxConnectingPerAddress` such connections, and each has `CONNECT_TIMEOUT_MS` to finish.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { finished } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import type { Logger } from '../../shared/logger.js';
import { formatHostPort, type HostPort } from '../../shared/address.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { MAX_MESSAGE_BYTES } from '../../shared/protocol.js';
import type { BrokerAuth, BrokerIdentity, PeerCertificate } from './auth.js';
import { ConnectingLimit } from './connecting-limit.js';
import { PacketSizeReader } from './packet-size.js';

/** Settles before the broker acknowledges a device's publish; a rejection withholds the acknowledgement. */
export type PublishGate = (topic: string, payload: Buffer) => Promise<void>;

export interface Broker {
  /** HOST:PORT once open. */
  readonly address: string;
  /** Starts listening: devices are admitted from now on, so every handler and gate must be in place. */
  open(): Promise<void>;
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
  /** New certificate, key or CRL for connections from now on (a TLS broker only; open connections keep theirs). */
  setTls(tls: BrokerTls): void;
  /**
   * Drops the connection of this client id, if any (a revoked device). One still connecting is
   * dropped once connected if `auth` no longer admits it.
   */
  disconnect(clientId: string): void;
  /** Drops the connection of this client id if `auth` no longer admits it (made with a token whose grace ended). */
  dropIfUnadmitted(clientId: string): void;
  /**
   * Called when a device's connection ends (closed, dropped, keepalive expired), last will or not;
   * not when a newer connection of the same device took over its session.
   */
  onConnectionClosed(listener: (deviceId: string) => void): void;
  close(): Promise<void>;
}

export interface BrokerLimits {
  /** Largest packet accepted from a connection that completed CONNECT; a larger one closes it. */
  maxPacketBytes: number;
  /** Connections from one address that may be between accept and CONNECT at once; more are closed. */
  maxConnectingPerAddress: number;
}

export const DEFAULT_BROKER_LIMITS: Readonly<BrokerLimits> = {
  // The largest message an agent sends, on the longest device topic (under 100 bytes), with MQTT's headers.
  maxPacketBytes: MAX_MESSAGE_BYTES + 1024,
  maxConnectingPerAddress: 32,
};

/** A CONNECT (id, username, token, will) is far smaller; anything larger before it is an attack. */
export const PRE_CONNECT_MAX_PACKET_BYTES = 64 * 1024;
/** From accept (or the TLS handshake's start) to an answered CONNECT, as long as an agent waits. */
export const CONNECT_TIMEOUT_MS = 10_000;

export interface BrokerTls {
  cert: Buffer | string;
  key: Buffer | string;
  /**
   * Client certificates signed by this CA (PEM) authenticate a device, and those in `crl` are refused
   * at the handshake. Devices without a certificate still connect (and authenticate with a token).
   */
  clientAuth?: { ca: string; crl: string };
}

function secureContextOptions(tls: BrokerTls) {
  return { cert: tls.cert, key: tls.key, ...(tls.clientAuth ? { ca: tls.clientAuth.ca, crl: tls.clientAuth.crl } : {}) };
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

export interface BrokerOptions {
  listen: HostPort;
  auth: BrokerAuth;
  logger: Logger;
  tls?: BrokerTls | undefined;
  limits?: Partial<BrokerLimits>;
}

/** A broker that is listening already: for callers with nothing to wire before devices arrive. */
export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  const broker = await createBroker(opts);
  try {
    await broker.open();
  } catch (err) {
    // aedes runs a heartbeat timer that would keep a failed process alive.
    await broker.close();
    throw err;
  }
  return broker;
}

/**
 * A broker that admits nobody until `open()`; messages published before then are retained. Close it
 * even if `open()` failed: aedes runs a heartbeat timer that would keep the process alive.
 */
export async function createBroker(opts: BrokerOptions): Promise<Broker> {
  const { auth, logger } = opts;
  const limits: BrokerLimits = { ...DEFAULT_BROKER_LIMITS, ...opts.limits };
  const identities = new WeakMap<Client, BrokerIdentity>();
  // The newest authenticated connection of each device: only its end takes the device offline.
  const current = new Map<string, Client>();
  const closedListeners: Array<(deviceId: string) => void> = [];
  const connecting = new ConnectingLimit(limits.maxConnectingPerAddress);
  /** Streams whose CONNECT was accepted: their packets may be up to `limits.maxPacketBytes`. */
  const authenticated = new WeakSet<object>();
  const gates: Array<{ filter: string; gate: PublishGate }> = [];
  /** A connection's verified client certificate. */
  const peerCertificates = new WeakMap<Socket, PeerCertificate>();
  const passGates = async (packet: { topic: string; payload: Buffer | string }): Promise<void> => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    for (const g of gates) if (topicMatches(g.filter, packet.topic)) await g.gate(packet.topic, payload);
  };
  const onAuthenticated = (client: Client, identity: BrokerIdentity): void => {
    const conn = client.conn as Socket;
    authenticated.add(conn);
    if (conn.remoteAddress !== undefined && conn.remotePort !== undefined) connecting.release(conn.remoteAddress, conn.remotePort);
    current.set(identity.deviceId, client);
    // finished() also calls back for a connection that is already gone.
    finished(conn, () => {
      if (current.get(identity.deviceId) !== client) return;
      current.delete(identity.deviceId);
      for (const listener of closedListeners) {
        try {
          listener(identity.deviceId);
        } catch (err) {
          logger.error({ err, deviceId: identity.deviceId }, 'a connection-closed listener failed');
        }
      }
    });
  };

  const aedes = await Aedes.createBroker({
    connectTimeout: CONNECT_TIMEOUT_MS,
    authenticate: (client, username, password, done) => {
      auth.authenticate(client.id, username, password, peerCertificates.get(client.conn as Socket)).then(
        (identity) => {
          if (!identity) {
            logger.warn({ clientId: client.id, username }, 'mqtt connection refused: bad credentials');
            const err = Object.assign(new Error('bad username or password'), { returnCode: BAD_USERNAME_OR_PASSWORD });
            done(err, false);
            return;
          }
          identities.set(client, identity);
          onAuthenticated(client, identity);
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
      logger.warn({ clientId: client.id }, 'mqtt client dropped: revoked (or its token expired) while it was connecting');
      client.close();
    }
  });
  aedes.on('clientDisconnect', (client) => logger.debug({ clientId: client.id }, 'mqtt client disconnected'));

  const registered = (clientId: string): Client | undefined => (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[clientId];

  /** Hands a connection (TCP, or TLS once its handshake is done) to aedes, behind the packet size cap. */
  const handle = (stream: Socket): void => {
    const client = aedes.handle(stream) as Client;
    const sizes = new PacketSizeReader();
    const limit = () => (authenticated.has(stream) ? limits.maxPacketBytes : PRE_CONNECT_MAX_PACKET_BYTES);
    // aedes reads in paused mode (`readable` and read()); read() emits each chunk as `data` before
    // returning it to aedes' parser, so this sees every byte first and does not make the stream flow.
    stream.on('data', (chunk: Buffer) => {
      const size = sizes.feed(chunk, limit);
      if (size === null) return;
      logger.warn({ clientId: client.id ?? undefined, remote: stream.remoteAddress, announced: size, limit: limit() }, 'mqtt connection closed: packet too large');
      stream.destroy();
    });
  };
  /**
   * A certificate that does not verify (another CA, expired, revoked), or that the hub did not issue
   * to its CN's device for MQTT, closes the connection at once:
   * presenting one is a claim to be a device, not a detail to ignore. rejectUnauthorized stays false
   * only so that devices without a certificate get as far as their token.
   */
  const handleTls = (socket: TLSSocket): void => {
    const peer = opts.tls?.clientAuth ? socket.getPeerCertificate() : undefined;
    if (peer && Object.keys(peer).length > 0) {
      const cn = peer.subject?.CN;
      const certificate = typeof cn === 'string' ? { commonName: cn, serial: peer.serialNumber } : undefined;
      const reason = !socket.authorized ? String(socket.authorizationError) : !certificate ? 'no subject CN' : auth.certificateAdmitted?.(certificate) === false ? 'not a client certificate the hub issued to an active device of that CN' : undefined;
      if (reason !== undefined || !certificate) {
        logger.warn({ remote: socket.remoteAddress, subject: certificate?.commonName, serial: peer.serialNumber, reason }, 'mqtt connection closed: client certificate refused');
        socket.destroy();
        return;
      }
      peerCertificates.set(socket, certificate);
    }
    handle(socket);
  };
  const server: Server = opts.tls
    ? createTlsServer({ ...secureContextOptions(opts.tls), requestCert: opts.tls.clientAuth !== undefined, rejectUnauthorized: false, handshakeTimeout: CONNECT_TIMEOUT_MS }, handleTls)
    : createServer(handle);
  if (opts.tls) {
    // A client that fails the handshake (wrong CA, plain TCP) is its problem, not the broker's.
    server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'mqtt tls handshake failed'));
  }
  // aedes only closes clients that completed CONNECT; a socket that never sent one (a port probe)
  // would hold server.close() until aedes' connect timeout. Shutdown destroys what is left.
  const sockets = new Set<Socket>();
  // 'connection' fires for TLS too, before the handshake: a socket stuck in it is tracked as well.
  server.on('connection', (socket: Socket) => {
    const { remoteAddress, remotePort } = socket;
    if (remoteAddress === undefined || remotePort === undefined || !connecting.admit(remoteAddress, remotePort)) {
      logger.warn({ remote: remoteAddress }, 'mqtt connection refused: too many connections from this address waiting for CONNECT');
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      connecting.release(remoteAddress, remotePort);
    });
  });
  let address: string | undefined;

  return {
    get address() {
      if (address === undefined) throw new EdgemlError(ErrorCodes.INTERNAL, 'the mqtt broker has no address before open()');
      return address;
    },
    open: async () => {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(opts.listen.port, opts.listen.host, () => resolve());
        });
      } catch (err) {
        throw new EdgemlError(ErrorCodes.HUB_LISTEN_FAILED, `mqtt broker cannot listen on ${formatHostPort(opts.listen)}: ${(err as Error).message}`, { cause: err });
      }
      const bound = server.address() as AddressInfo;
      address = formatHostPort({ host: bound.address, port: bound.port });
    },
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
    setTls: (tls) => {
      if (!opts.tls) throw new EdgemlError(ErrorCodes.INTERNAL, 'the mqtt broker speaks plain MQTT: it has no TLS context to change');
      (server as TlsServer).setSecureContext(secureContextOptions(tls));
    },
    disconnect: (clientId) => registered(clientId)?.close(),
    dropIfUnadmitted: (clientId) => {
      const client = registered(clientId);
      const identity = client && identities.get(client);
      if (client && identity && !auth.admitted(identity)) {
        logger.info({ clientId }, 'mqtt client dropped: its token is no longer valid');
        client.close();
      }
    },
    onConnectionClosed: (listener) => void closedListeners.push(listener),
    close: async () => {
      const closed = server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
