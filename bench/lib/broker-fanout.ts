/**
 * The floor of a rollout's fan-out on a plain MQTT broker (an anonymous Mosquitto from
 * mosquitto.ts): N clients subscribed to their `desired` topic as devices are, one controller client that
 * publishes the same retained QoS 1 desired state to each and counts one QoS 1 report back from each.
 * No store, no rollout bookkeeping, no simulated work: what any controller over MQTT pays at least.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, type DesiredState, type ReportedState } from '../../shared/protocol.js';
import { deviceTopic, parseDeviceTopic } from '../../shared/topics.js';
import { processUsage, rssMb, startUsageSampler, type SamplerSummary } from './process-usage.js';

export interface FanoutRound {
  generation: number;
  /** From the first desired publish until the controller had a report from every device. */
  allReportedMs: number;
  /** PUBLISH packets per device, sent + received by the device clients. */
  messagesPerDevice: number;
  /** The broker during the round. */
  broker: SamplerSummary;
}

export interface FanoutResult {
  devices: number;
  connectMs: number;
  /** The broker's resident memory with every client connected, before the first round. */
  connectedRssMb: number;
  /** Round 1 runs on a cold client process (as a first deploy), round 2 on a warm one (as an update). */
  rounds: FanoutRound[];
}

export interface FanoutOptions {
  url: string;
  brokerPid: number;
  ids: readonly string[];
  service: string;
  image: string;
  connectConcurrency?: number;
  /** Fan-outs in a row (default 2). */
  rounds?: number;
  timeoutMs: number;
}

const desiredState = (service: string, image: string, generation: number): DesiredState => ({
  v: PROTOCOL_VERSION,
  epoch: 'bench',
  generation,
  services: [
    {
      name: service,
      revision: generation,
      image,
      limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null },
      keyHash: 'a'.repeat(64),
      models: [{ name: 'iris', version: 1, digest: `sha256:${'b'.repeat(64)}` }],
    },
  ],
});

const reportOf = (d: DesiredState): ReportedState => ({
  v: PROTOCOL_VERSION,
  observedGeneration: d.generation,
  phase: 'converged',
  services: d.services.map((s) => ({ name: s.name, revision: s.revision, image: s.image, phase: 'running', servingRevision: s.revision, progress: null, error: null })),
});

function connect(url: string, clientId: string, timeoutMs: number): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    // As the devices connect (bench/simulator/sim-link.ts): persistent session, MQTT 3.1.1, no auto-reconnect.
    const client = mqtt.connect(url, { clientId, clean: false, protocolVersion: 4, keepalive: 30, connectTimeout: timeoutMs, reconnectPeriod: 0 });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error(`${clientId}: connection closed before CONNACK`)));
  });
}

/** Connects a client per id, runs `rounds` fan-outs (generation 1, 2, …) and their reports, disconnects everything. */
export async function runFanout(o: FanoutOptions): Promise<FanoutResult> {
  const clients: MqttClient[] = [];
  const counts = { sent: 0, received: 0 };
  try {
    const connectStarted = performance.now();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < o.ids.length; i = next++) {
        const id = o.ids[i]!;
        const client = await connect(o.url, id, 10_000);
        clients.push(client);
        client.on('packetsend', (p) => {
          if (p.cmd === 'publish') counts.sent++;
        });
        client.on('packetreceive', (p) => {
          if (p.cmd === 'publish') counts.received++;
        });
        client.on('message', (topic, message) => {
          // The device's side: validate, "apply", report — as little as a device can do.
          const decoded = decodeMessage('desired', message);
          if (decoded.ok) client.publish(deviceTopic(id, 'reported'), encodeMessage('reported', reportOf(decoded.value)), { qos: 1 });
        });
        await client.subscribeAsync([deviceTopic(id, 'desired')], { qos: 1 });
      }
    };
    await withTimeout(Promise.all(Array.from({ length: Math.min(o.connectConcurrency ?? 100, o.ids.length) }, worker)), o.timeoutMs, 'the fan-out clients to connect');
    const connectMs = performance.now() - connectStarted;

    const controller = await connect(o.url, 'bench-controller', 10_000);
    clients.push(controller);
    let generation = 0;
    let reported = new Set<string>();
    let allReported: () => void = () => undefined;
    controller.on('message', (topic, message) => {
      const id = parseDeviceTopic(topic)?.deviceId;
      const decoded = decodeMessage('reported', message);
      if (id && decoded.ok && decoded.value.observedGeneration === generation) reported.add(id);
      if (reported.size === o.ids.length) allReported();
    });
    await controller.subscribeAsync('edgeml/v1/dev/+/reported', { qos: 1 });

    const connectedRssMb = rssMb(processUsage(o.brokerPid).rssBytes);
    const rounds: FanoutRound[] = [];
    for (let round = 1; round <= (o.rounds ?? 2); round++) {
      generation = round;
      reported = new Set();
      const done = new Promise<void>((resolve) => (allReported = resolve));
      const payload = encodeMessage('desired', desiredState(o.service, o.image, generation));
      const before = { ...counts };
      const usage = startUsageSampler(o.brokerPid);
      const t0 = performance.now();
      for (const id of o.ids) controller.publish(deviceTopic(id, 'desired'), payload, { qos: 1, retain: true });
      await withTimeout(done, o.timeoutMs, `reports of generation ${generation} from all ${o.ids.length} devices (${reported.size} so far)`);
      const allReportedMs = performance.now() - t0;
      const broker = await usage.stop();
      const messagesPerDevice = (counts.sent + counts.received - before.sent - before.received) / o.ids.length;
      rounds.push({ generation, allReportedMs, messagesPerDevice, broker });
    }
    return { devices: o.ids.length, connectMs, connectedRssMb, rounds };
  } finally {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
