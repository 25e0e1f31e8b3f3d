/**
 * One simulated device's MQTT connection, set up exactly as agent/link/hub-link.ts does it:
 * clientId = username = device id, password = token, a persistent session (clean: false), QoS 1,
 * subscriptions to `desired` and `cmd` when the broker has no session, a retained `online` status
 * on every connect, and a retained last will `offline (lost)`. Reconnects follow capped, jittered
 * backoff on the fleet's scheduler, and stop after `maxAttempts` connections lost or refused in a row.
 *
 * `goOffline()` pulls the plug: the socket is destroyed without a DISCONNECT, so the broker sends
 * the will, while the device itself (its reconcile loop) goes on, as a device that lost its network.
 */
import mqtt, { Store, type MqttClient } from 'mqtt';
import { backoffDelay, type BackoffPolicy } from '../../shared/backoff.js';
import { encodeMessage, PROTOCOL_VERSION, type MessageTypes, type StatusMessage } from '../../shared/protocol.js';
import { deviceTopic, parseDeviceTopic, type Channel } from '../../shared/topics.js';
import type { Scheduled, Scheduler } from './scheduler.js';
import { drawKey, uniform } from './seeded-random.js';

/**
 * `connecting` (first connect or reconnecting), `online` (connected and announced), `offline`
 * (taken offline by `goOffline()`), `gave-up` (out of attempts), `stopped`.
 */
export type LinkState = 'connecting' | 'online' | 'offline' | 'gave-up' | 'stopped';
export const LINK_STATES: readonly LinkState[] = ['connecting', 'online', 'offline', 'gave-up', 'stopped'];

export interface SimLinkOptions {
  url: string;
  deviceId: string;
  token: string;
  onlineStatus: () => StatusMessage;
  /** A message on one of the device's subscribed channels (`desired`, `cmd`), not yet validated. */
  onMessage: (channel: Channel, payload: Buffer) => void;
  /** On each connect, as the agent's `onConnect`: where the newest report is sent again. */
  onConnect: () => void;
  scheduler: Scheduler;
  seed: number;
  attemptTimeoutMs: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
}

const SUBSCRIBED: Channel[] = ['desired', 'cmd'];

export class SimLink {
  #state: LinkState = 'connecting';
  #client: MqttClient | null = null;
  /** Kept across reconnects, as the agent does, so QoS 1 messages in flight survive them. */
  readonly #stores = { incomingStore: new Store(), outgoingStore: new Store() };
  #failures = 0;
  #retry: Scheduled | null = null;
  #lastError: string | null = null;
  #waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  /** MQTT PUBLISH packets on this link (resends included), for benchmarks' messages per device. */
  readonly #messages = { sent: 0, received: 0 };

  constructor(private readonly o: SimLinkOptions) {}

  get state(): LinkState {
    return this.#state;
  }

  /** PUBLISH packets sent and received so far, over every connection of this link. */
  get messages(): { sent: number; received: number } {
    return { ...this.#messages };
  }

  /** Why the last attempt or connection failed, for diagnostics. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Connects; resolves once `online` is announced, rejects when the device gives up. */
  start(): Promise<void> {
    const announced = this.announced();
    this.#client = mqtt.connect(this.o.url, {
      clientId: this.o.deviceId,
      username: this.o.deviceId,
      password: this.o.token,
      clean: false,
      protocolVersion: 4,
      keepalive: 30,
      connectTimeout: this.o.attemptTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      will: {
        topic: deviceTopic(this.o.deviceId, 'status'),
        payload: encodeMessage('status', { v: PROTOCOL_VERSION, state: 'offline', reason: 'lost' }),
        qos: 1,
        retain: true,
      },
      ...this.#stores,
    });
    const client = this.#client;
    client.on('connect', () => {
      void this.announce(client);
      this.o.onConnect();
    });
    client.on('close', () => this.closed());
    client.on('error', (err) => {
      this.#lastError = err.message;
    });
    client.on('packetsend', (packet) => {
      if (packet.cmd === 'publish') this.#messages.sent++;
    });
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'publish') this.#messages.received++;
    });
    client.on('message', (topic, payload) => {
      const parsed = parseDeviceTopic(topic);
      if (parsed?.deviceId === this.o.deviceId) this.o.onMessage(parsed.channel, payload);
    });
    return announced;
  }

  /** As the agent's link: reports go out whenever the client is connected, announced or not yet. */
  connected(): boolean {
    return this.#client?.connected === true && this.#state !== 'offline' && this.#state !== 'stopped';
  }

  async publish<C extends Channel>(channel: C, message: MessageTypes[C]): Promise<void> {
    await this.#client?.publishAsync(deviceTopic(this.o.deviceId, channel), encodeMessage(channel, message), { qos: 1 });
  }

  /** Drops the connection abruptly (no DISCONNECT: the broker publishes the last will). */
  goOffline(): void {
    if (this.#state === 'stopped') return;
    this.#state = 'offline';
    this.#retry?.cancel();
    this.#client?.stream.destroy();
    this.rejectWaiters(new Error(`${this.o.deviceId} was taken offline`));
  }

  /** Reconnects (resuming the broker session); resolves once `online` is announced again. */
  goOnline(): Promise<void> {
    if (this.#state === 'stopped') return Promise.reject(new Error(`${this.o.deviceId} is stopped`));
    if (this.#state === 'online' || this.#state === 'connecting') return this.#state === 'online' ? Promise.resolve() : this.announced();
    const announced = this.announced();
    this.#state = 'connecting';
    this.#failures = 0;
    this.#client?.reconnect(this.#stores);
    return announced;
  }

  /** Closes without a DISCONNECT, like a device switched off: the hub sees it `offline (lost)`. */
  async close(): Promise<void> {
    this.#state = 'stopped';
    this.#retry?.cancel();
    this.rejectWaiters(new Error(`${this.o.deviceId} was stopped`));
    await this.#client?.endAsync(true);
  }

  private announced(): Promise<void> {
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Subscribes even when the broker kept the session, as the agent does (it brings the retained desired state). */
  private async announce(client: MqttClient): Promise<void> {
    try {
      await client.subscribeAsync(SUBSCRIBED.map((c) => deviceTopic(this.o.deviceId, c)), { qos: 1 });
      await client.publishAsync(deviceTopic(this.o.deviceId, 'status'), encodeMessage('status', this.o.onlineStatus()), { qos: 1, retain: true });
    } catch (err) {
      // The connection went while announcing: the close handler reconnects, and announces again.
      this.#lastError = (err as Error).message;
      return;
    }
    // A goOffline() or stop that came meanwhile wins.
    if (this.#state !== 'connecting' || !client.connected) return;
    this.#state = 'online';
    this.#failures = 0;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve();
  }

  private closed(): void {
    if (this.#state === 'offline' || this.#state === 'stopped' || this.#state === 'gave-up') return;
    this.#state = 'connecting';
    const attempt = ++this.#failures;
    if (attempt >= this.o.maxAttempts) {
      this.#state = 'gave-up';
      this.rejectWaiters(new Error(`${this.o.deviceId} gave up after ${attempt} connection attempts: ${this.#lastError ?? 'connection closed'}`));
      return;
    }
    const delay = backoffDelay(attempt - 1, this.o.backoff, () => uniform(this.o.seed, drawKey('reconnect', this.o.deviceId, attempt)));
    this.#retry?.cancel();
    this.#retry = this.o.scheduler.after(delay, () => {
      if (this.#state === 'connecting') this.#client?.reconnect(this.#stores);
    });
  }

  private rejectWaiters(err: Error): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(err);
  }
}
