/**
 * The agent's connection to the hub's broker (mqtt.js): a persistent session with QoS 1, a retained
 * `online` status on every connect, a last will of `offline`, and reconnects with capped, jittered
 * backoff. Incoming messages are validated; invalid ones are dropped and counted. Credentials are
 * asked for before every connection attempt (a token file may have changed, a client certificate
 * may have come), so connections are started here, never by mqtt.js itself.
 */
import mqtt, { Store, type MqttClient } from 'mqtt';
import { backoffDelay, defaultBackoff, type BackoffPolicy } from '../../shared/backoff.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, type CertificateAnswer, type Command, type CommandAck, type DesiredState, type MessageTypes, type StatusMessage } from '../../shared/protocol.js';
import { deviceTopic, parseDeviceTopic, type Channel } from '../../shared/topics.js';
import type { ConnectionCredentials, CredentialsSource } from './credentials.js';

export interface HubLinkHandlers {
  desired(message: DesiredState): Promise<void>;
  /** A desired state that failed validation: dropped, and the hub should hear why. */
  invalidDesired(reason: string): void;
  command(message: Command): Promise<CommandAck>;
  /** The hub's answer to a certificate request (agent/pki/requests.ts). */
  certificate(message: CertificateAnswer): void;
}

export interface HubLinkOptions {
  url: string;
  deviceId: string;
  /** Asked before every connection attempt (agent/link/credentials.ts); none = the device id only. */
  credentials?: CredentialsSource;
  /** Built fresh on each connect so the hub always sees current facts. */
  onlineStatus(): Promise<StatusMessage>;
  handlers: HubLinkHandlers;
  /** After each (re)connect: the place to resend what could not be sent while offline. */
  onConnect?: () => void;
  /** Once a connection's subscriptions are in place: from then on answers to requests reach us. */
  onSubscribed?: () => void;
  logger: Logger;
  clock: Clock;
  backoff?: BackoffPolicy;
}

export interface HubLink {
  connected(): boolean;
  /** Connected with its subscriptions in place: a request sent now gets its answer (answers are not retained). */
  subscribed(): boolean;
  invalidMessages(): number;
  publish<C extends Channel>(channel: C, message: MessageTypes[C], opts?: { retain?: boolean }): Promise<void>;
  /** Connects again now with fresh credentials (a client certificate just came), after a clean disconnect. */
  reconnect(): void;
  /** Publishes `offline` (shutdown) when connected, then disconnects. */
  close(): Promise<void>;
}

const SUBSCRIBED: Channel[] = ['desired', 'cmd', 'cert'];
/**
 * TLS alerts the broker sends about our client certificate (bad, revoked, expired, unknown CA,
 * missing). A broker may also close the connection right after the handshake, before any CONNACK
 * (the hub's does): that counts as a refusal too, but only when it comes quickly, without a socket
 * error, twice in a row (a hub restarting or timing out closes that way once in a while too).
 */
const CERTIFICATE_ALERT = /^ERR_SSL_.*ALERT_(BAD_CERTIFICATE|CERTIFICATE_|UNKNOWN_CA|ACCESS_DENIED|UNSUPPORTED_CERTIFICATE)/;
/** A close this soon after the TLS handshake, before CONNACK, looks like a refused certificate. */
const REFUSAL_CLOSE_MS = 1000;
/** ... and this many of them in a row are taken as one. */
const REFUSAL_CLOSES = 2;
/** A clean stop waits this long for the broker to take the `offline` status, then just leaves. */
const OFFLINE_PUBLISH_TIMEOUT_MS = 2000;

export function connectHubLink(opts: HubLinkOptions): HubLink {
  const { deviceId, logger, clock } = opts;
  const policy = opts.backoff ?? defaultBackoff;
  const statusTopic = deviceTopic(deviceId, 'status');
  // Our own stores, handed back on every reconnect, so QoS 1 messages in flight survive a reconnect.
  // clean: false, so a clean disconnect (reconnect()) does not empty them.
  const stores = { incomingStore: new Store({ clean: false }), outgoingStore: new Store({ clean: false }) };
  let invalid = 0;
  let attempt = 0;
  let closing = false;
  let retryTimer: unknown = null;
  let announceTimer: unknown = null;
  /** Bumped on every connect, so a retry scheduled for an old connection does nothing. */
  let connection = 0;
  /** The connection whose subscriptions are in place. */
  let subscribedConnection = -1;
  /** The last attempt was refused for who we said we were; told to the credentials source. */
  let refused = false;
  /** A clean disconnect under way to connect again with new credentials: its close schedules nothing. */
  let restarting = false;
  let started = false;
  /** When this attempt's TLS handshake completed, while the broker has not answered CONNECT yet. */
  let handshakeAt: number | null = null;
  /** This attempt saw a socket or protocol error: its close is not a refusal. */
  let attemptFailed = false;
  /** Quick closes after the handshake in a row. */
  let quickCloses = 0;

  const client: MqttClient = mqtt.connect(opts.url, {
    clientId: deviceId,
    username: deviceId,
    manualConnect: true,
    clean: false,
    protocolVersion: 4,
    keepalive: 30,
    connectTimeout: 10_000,
    // Reconnects are scheduled below with backoff; mqtt.js' own fixed-period retry is off.
    reconnectPeriod: 0,
    resubscribe: false,
    will: {
      topic: statusTopic,
      payload: encodeMessage('status', { v: PROTOCOL_VERSION, state: 'offline', reason: 'lost' }),
      qos: 1,
      retain: true,
    },
    ...stores,
  });

  const apply = (c: ConnectionCredentials): void => {
    const o = client.options;
    o.username = c.username;
    o.password = c.password;
    // mqtt.js hands these options to tls.connect for each new connection.
    Object.assign(o, { key: c.key, cert: c.cert, ca: c.ca });
  };

  const retryLater = (): number => {
    const delay = backoffDelay(attempt++, policy);
    clock.clearTimeout(retryTimer);
    retryTimer = clock.setTimeout(() => void connectNow(), delay);
    return delay;
  };

  /** One connection attempt with the credentials of this moment. */
  const connectNow = async (): Promise<void> => {
    if (closing) return;
    try {
      if (opts.credentials) apply(await opts.credentials({ refused }));
    } catch (err) {
      logger.error({ err: (err as Error).message, code: (err as { code?: unknown }).code }, 'no credentials to connect to the hub with; trying again later');
      if (!closing) retryLater();
      return;
    }
    refused = false;
    if (closing) return;
    if (started) client.reconnect(stores);
    else client.connect();
    started = true;
    handshakeAt = null;
    attemptFailed = false;
    client.stream?.once('secureConnect', () => {
      handshakeAt = clock.now();
    });
  };

  // async, so an invalid message (encodeMessage throws) is a rejection like any other publish failure.
  const publish = async <C extends Channel>(channel: C, message: MessageTypes[C], popts: { retain?: boolean } = {}): Promise<void> => {
    await client.publishAsync(deviceTopic(deviceId, channel), encodeMessage(channel, message), { qos: 1, retain: popts.retain ?? false });
  };

  /**
   * Subscribes and announces `online`; retries with backoff. Subscribes even when the broker kept
   * our session: only a new subscription delivers the retained desired state, and an agent whose
   * data directory was lost has nothing else to start from (a repeat is dropped as not newer).
   */
  const announce = async (conn: number, tries: number): Promise<void> => {
    try {
      await client.subscribeAsync(SUBSCRIBED.map((c) => deviceTopic(deviceId, c)), { qos: 1 });
      if (closing || conn !== connection) return;
      if (subscribedConnection !== conn) {
        subscribedConnection = conn;
        opts.onSubscribed?.();
      }
      const status = await opts.onlineStatus();
      // A stop that began meanwhile must not be followed by a late `online`.
      if (closing || conn !== connection) return;
      await publish('status', status, { retain: true });
    } catch (err) {
      if (closing || conn !== connection) return;
      const delay = backoffDelay(tries, policy);
      logger.warn({ err: (err as Error).message, retryInMs: delay }, 'could not announce online status');
      announceTimer = clock.setTimeout(() => void announce(conn, tries + 1), delay);
    }
  };

  client.on('connect', (connack) => {
    handshakeAt = null;
    quickCloses = 0;
    attempt = 0;
    connection++;
    clock.clearTimeout(announceTimer);
    logger.info({ hub: opts.url, sessionPresent: connack.sessionPresent }, 'connected to hub');
    void announce(connection, 0);
    opts.onConnect?.();
  });

  client.on('close', () => {
    const quick = handshakeAt !== null && !attemptFailed && clock.now() - handshakeAt < REFUSAL_CLOSE_MS;
    quickCloses = quick ? quickCloses + 1 : 0;
    if (quickCloses >= REFUSAL_CLOSES) {
      refused = true;
      quickCloses = 0;
    }
    handshakeAt = null;
    if (closing || restarting) return;
    logger.info({ retryInMs: retryLater(), attempt }, 'disconnected from hub');
  });

  client.on('error', (err) => {
    attemptFailed = true;
    const code = (err as { code?: unknown }).code;
    // CONNACK 4 and 5: the broker refused this device's credentials; retrying will not fix that.
    if (code === 4 || code === 5 || (typeof code === 'string' && CERTIFICATE_ALERT.test(code))) refused = true;
    if (code === 4 || code === 5) {
      logger.error({ code }, 'the hub refused this device: check the device id and its token (EDGEML_AGENT_TOKEN, --token-file) or client certificate, or whether it was revoked');
    } else {
      logger.warn({ err: err.message, code }, 'mqtt error');
    }
  });

  const dropInvalid = (topic: string, reason: string): void => {
    invalid++;
    logger.warn({ topic, reason, invalidMessages: invalid }, 'dropped invalid mqtt message');
  };

  client.on('message', (topic, payload) => {
    const parsed = parseDeviceTopic(topic);
    if (!parsed || parsed.deviceId !== deviceId) return dropInvalid(topic, 'not a topic of this device');
    void (async () => {
      try {
        if (parsed.channel === 'desired') {
          const decoded = decodeMessage('desired', payload);
          if (!decoded.ok) {
            opts.handlers.invalidDesired(decoded.error);
            return dropInvalid(topic, decoded.error);
          }
          await opts.handlers.desired(decoded.value);
        } else if (parsed.channel === 'cmd') {
          const decoded = decodeMessage('cmd', payload);
          if (!decoded.ok) return dropInvalid(topic, decoded.error);
          await publish('cmd/ack', await opts.handlers.command(decoded.value));
        } else if (parsed.channel === 'cert') {
          const decoded = decodeMessage('cert', payload);
          if (!decoded.ok) return dropInvalid(topic, decoded.error);
          opts.handlers.certificate(decoded.value);
        }
      } catch (err) {
        logger.error({ err, topic }, 'handling a message failed');
      }
    })();
  });

  void connectNow();

  return {
    connected: () => client.connected,
    subscribed: () => client.connected && subscribedConnection === connection,
    invalidMessages: () => invalid,
    publish,
    reconnect: () => {
      if (closing || restarting || !client.connected) return;
      restarting = true;
      client.end(false, () => {
        restarting = false;
        void connectNow();
      });
    },
    close: async () => {
      closing = true;
      clock.clearTimeout(retryTimer);
      clock.clearTimeout(announceTimer);
      let clean = !client.connected;
      if (client.connected) {
        let timer: unknown;
        const timeout = new Promise<void>((_, reject) => {
          timer = clock.setTimeout(() => reject(new Error(`no acknowledgement in ${OFFLINE_PUBLISH_TIMEOUT_MS} ms`)), OFFLINE_PUBLISH_TIMEOUT_MS);
        });
        try {
          await Promise.race([publish('status', { v: PROTOCOL_VERSION, state: 'offline', reason: 'shutdown' }, { retain: true }), timeout]);
          clean = true;
        } catch (err) {
          logger.warn({ err: (err as Error).message }, 'could not publish offline status; the broker will send the last will');
        } finally {
          clock.clearTimeout(timer);
        }
      }
      // Forced when the hub did not answer: a polite DISCONNECT would wait on the same dead link.
      await client.endAsync(!clean);
    },
  };
}
