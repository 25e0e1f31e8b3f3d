/**
 * A load-generator process for the MQTT benchmarks (telemetry-ingest, agent-footprint): it holds
 * many mqtt.js device connections and publishes telemetry batches, so the clients' CPU is spent on
 * the load cores and never in the broker's process. Driven over the Node IPC channel by
 * `MqttClientsWorker` (mqtt-clients-driver.ts), one command at a time:
 *
 * - `connect`: connects devices as the agent does (client id = username = device id, password =
 *   token, persistent session, QoS 1 subscriptions to `desired` and `cmd`, a retained last will);
 * - `publish`: every connected device publishes QoS 1 `MetricsBatch`es on its telemetry topic,
 *   either at a fixed interval (open loop) or keeping `window` batches in flight (closed loop), and
 *   reports PUBACKs received and publish-to-PUBACK latencies;
 * - `consume`: one subscriber to every device's telemetry (QoS 1) that counts what it receives;
 * - `count`, `close`.
 *
 * Every wait is bounded: a command that cannot finish answers with an error.
 */
import { performance } from 'node:perf_hooks';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import { PROTOCOL_VERSION, type MetricsBatch } from '../../shared/protocol.js';
import { allDevices, deviceTopic } from '../../shared/topics.js';
import { metricsBatch, serviceInterval } from '../../test/helpers/telemetry-batches.js';

export interface DeviceCredential {
  id: string;
  token: string;
}

export type WorkerCommand =
  | { op: 'connect'; url: string; devices: DeviceCredential[]; concurrency: number; timeoutMs: number }
  | { op: 'publish'; mode: 'rate'; intervalMs: number; warmupMs: number; durationMs: number; drainMs: number }
  | { op: 'publish'; mode: 'closed'; window: number; warmupMs: number; durationMs: number; drainMs: number }
  | { op: 'consume'; url: string; username: string; password: string; timeoutMs: number }
  | { op: 'count' }
  | { op: 'close' };

export interface ConnectResult {
  connected: number;
  ms: number;
}

export interface PublishResult {
  /** PUBACKs received during the measured window (after the warm-up). */
  ackedInWindow: number;
  windowMs: number;
  /** Publish-to-PUBACK of the batches published in the measured window, in ms (rounded to µs). */
  latenciesMs: number[];
  published: number;
  acked: number;
  /** Still without a PUBACK when the drain ended. */
  unacked: number;
  errors: number;
  /** This process's CPU over the whole phase, % of one core. */
  cpuPercent: number;
}

export type WorkerReply = { ok: true; result: unknown } | { ok: false; error: string };

/** A valid batch from `device`, numbered `seq`, covering the last 10 s (the hub refuses future days). */
function batchPayload(device: string, seq: number, template: MetricsBatch): Buffer {
  const to = Date.now();
  const batch: MetricsBatch = { ...template, id: `${device}-${seq}`, from: new Date(to - 10_000).toISOString(), to: new Date(to).toISOString() };
  return Buffer.from(JSON.stringify(batch));
}

const TEMPLATE: MetricsBatch = metricsBatch({
  services: {
    iris: serviceInterval({
      requests: 20,
      responses: { '2xx': 20, '3xx': 0, '4xx': 0, '5xx': 0 },
      latencyMs: { boundsMs: [...LATENCY_BOUNDS_MS], counts: [...LATENCY_BOUNDS_MS.map((_, i) => (i === 1 ? 20 : 0)), 0], sumMs: 160 },
    }),
  },
});

function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms);
    }),
  ]);
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

class Clients {
  readonly devices: Array<{ id: string; client: MqttClient }> = [];
  consumer: MqttClient | null = null;
  consumed = 0;
  /** Numbers every batch this process sends, across phases: a repeated id would be stored once, as a duplicate. */
  seq = 0;

  async connect(cmd: Extract<WorkerCommand, { op: 'connect' }>): Promise<ConnectResult> {
    const started = performance.now();
    let next = 0;
    const connectOne = async (d: DeviceCredential) => {
      const options: IClientOptions = {
        clientId: d.id,
        username: d.id,
        password: d.token,
        clean: false,
        protocolVersion: 4,
        keepalive: 30,
        connectTimeout: cmd.timeoutMs,
        reconnectPeriod: 0,
        will: { topic: deviceTopic(d.id, 'status'), payload: Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, state: 'offline', reason: 'lost' })), qos: 1, retain: true },
      };
      const client = await mqtt.connectAsync(cmd.url, options);
      // Kept before subscribing, so `close` ends it even if the subscription fails.
      this.devices.push({ id: d.id, client });
      client.on('error', () => undefined);
      const granted = await client.subscribeAsync([deviceTopic(d.id, 'desired'), deviceTopic(d.id, 'cmd')], { qos: 1 });
      if (granted.some((g) => g.qos === 128)) throw new Error(`${d.id}: subscription refused`);
    };
    const worker = async () => {
      for (let i = next++; i < cmd.devices.length; i = next++) await connectOne(cmd.devices[i]!);
    };
    await withTimeout(`connecting ${cmd.devices.length} devices`, cmd.timeoutMs, Promise.all(Array.from({ length: Math.min(cmd.concurrency, cmd.devices.length) }, worker)));
    return { connected: this.devices.length, ms: performance.now() - started };
  }

  async publish(cmd: Extract<WorkerCommand, { op: 'publish' }>): Promise<PublishResult> {
    const cpu0 = cpuMicros();
    const t0 = performance.now();
    const windowStart = t0 + cmd.warmupMs;
    const end = windowStart + cmd.durationMs;
    const latenciesMs: number[] = [];
    let published = 0;
    let acked = 0;
    let ackedInWindow = 0;
    let errors = 0;
    let settle: () => void = () => undefined;
    const send = (d: { id: string; client: MqttClient }, onAck: () => void) => {
      const sentAt = performance.now();
      published++;
      d.client.publish(deviceTopic(d.id, 'telemetry'), batchPayload(d.id, this.seq++, TEMPLATE), { qos: 1 }, (err) => {
        const now = performance.now();
        if (err) errors++;
        else {
          acked++;
          if (now >= windowStart && now <= end) ackedInWindow++;
          if (sentAt >= windowStart && sentAt <= end) latenciesMs.push(Math.round((now - sentAt) * 1000) / 1000);
        }
        if (published === acked + errors && performance.now() > end) settle();
        onAck();
      });
    };
    const timers: NodeJS.Timeout[] = [];
    if (cmd.mode === 'rate') {
      // Each device on its own phase of the interval, so the load is spread evenly.
      this.devices.forEach((d, i) => {
        const first = (cmd.intervalMs * i) / this.devices.length;
        timers.push(
          setTimeout(() => {
            if (performance.now() < end) send(d, () => undefined);
            const every = setInterval(() => {
              if (performance.now() < end) send(d, () => undefined);
              else clearInterval(every);
            }, cmd.intervalMs);
            timers.push(every);
          }, first),
        );
      });
    } else {
      const loop = (d: { id: string; client: MqttClient }) => {
        if (performance.now() < end) send(d, () => loop(d));
      };
      for (const d of this.devices) for (let w = 0; w < cmd.window; w++) loop(d);
    }
    await new Promise((r) => setTimeout(r, end - performance.now()));
    for (const t of timers) clearTimeout(t);
    // Bounded drain: what is still without a PUBACK after it counts as unacked.
    await new Promise<void>((resolve) => {
      settle = resolve;
      if (published === acked + errors) resolve();
      setTimeout(resolve, cmd.drainMs);
    });
    const elapsed = performance.now() - t0;
    return {
      ackedInWindow,
      windowMs: cmd.durationMs,
      latenciesMs,
      published,
      acked,
      unacked: published - acked - errors,
      errors,
      cpuPercent: ((cpuMicros() - cpu0) / 1000 / elapsed) * 100,
    };
  }

  async consume(cmd: Extract<WorkerCommand, { op: 'consume' }>): Promise<{ subscribed: true }> {
    const client = await mqtt.connectAsync(cmd.url, { clientId: cmd.username, username: cmd.username, password: cmd.password, clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: cmd.timeoutMs });
    this.consumer = client;
    client.on('error', () => undefined);
    client.on('message', () => void this.consumed++);
    await withTimeout('subscribing', cmd.timeoutMs, client.subscribeAsync(allDevices('telemetry'), { qos: 1 }));
    return { subscribed: true };
  }

  async close(): Promise<void> {
    const all = [...this.devices.map((d) => d.client), ...(this.consumer ? [this.consumer] : [])];
    await withTimeout(
      'closing the clients',
      10_000,
      Promise.all(all.map((c) => c.endAsync().catch(() => undefined))),
    ).catch(() => all.forEach((c) => c.end(true)));
  }
}

const clients = new Clients();

async function handle(cmd: WorkerCommand): Promise<unknown> {
  switch (cmd.op) {
    case 'connect':
      return clients.connect(cmd);
    case 'publish':
      return clients.publish(cmd);
    case 'consume':
      return clients.consume(cmd);
    case 'count':
      return { consumed: clients.consumed };
    case 'close':
      await clients.close();
      return { closed: true };
  }
}

if (!process.send) {
  process.stderr.write('mqtt-clients: run me through MqttClientsWorker (an IPC channel is needed)\n');
  process.exit(2);
}
process.on('message', (cmd: WorkerCommand) => {
  handle(cmd).then(
    (result) => process.send!({ ok: true, result } satisfies WorkerReply),
    (err: unknown) => process.send!({ ok: false, error: (err as Error).message ?? String(err) } satisfies WorkerReply),
  );
});
// The driver going away (killed, crashed) ends this process too.
process.on('disconnect', () => process.exit(0));
