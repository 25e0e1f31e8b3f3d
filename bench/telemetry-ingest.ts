/**
 * Telemetry ingest (issue 8, benchmark 1): authenticated device connections publish QoS 1 metrics
 * batches at a real hub (bin/edgeml from dist/, pinned to the system-under-test cores), which
 * acknowledges a batch only once its telemetry archive has it on disk; then the same clients and
 * payloads at a private Mosquitto (Debian) pinned to the same cores, with a password file for the
 * same devices, the same per-device ACL, and one QoS 1 subscriber taking every batch. Clients run
 * in another process on the load cores (bench/lib/mqtt-clients.ts).
 *
 * Measured, on each broker in turn:
 * - a fixed rate (every device one batch per second): p50 and p99 publish-to-PUBACK latency;
 * - saturation (every device keeps a few batches in flight): batches per second acknowledged
 *   (on the hub: stored, checked against its `edgeml_telemetry_batches_stored_total`; on Mosquitto:
 *   routed, checked against what the subscriber received), and broker CPU per 1,000 batches;
 * - idle connections (devices connected as the agent does, then nothing): broker RSS before and
 *   after, per connection, at two fleet sizes.
 *
 *   npm run build && npx tsx bench/telemetry-ingest.ts [--quick]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runStandalone, type Row, type Scenario, type ScenarioContext } from './lib/scenario.js';
import { enrollThroughRest, hubMetric, seedDevices, startHub, type Hub } from './lib/hub.js';
import { startMosquitto, type Mosquitto } from './lib/mosquitto.js';
import type { DeviceCredential, PublishResult } from './lib/mqtt-clients.js';
import { MqttClientsWorker } from './lib/mqtt-clients-driver.js';
import { processUsage } from './lib/process-usage.js';
import { MiB, quantile } from './lib/stats.js';

interface Settings {
  /** Devices publishing in the rate and saturation phases (enrolled through REST). */
  publishers: number;
  /** Fixed-rate phase: each device publishes every this many ms. */
  intervalMs: number;
  /** Saturation phase: batches each device keeps in flight. */
  window: number;
  warmupMs: number;
  phaseMs: number;
  drainMs: number;
  /** Idle fleet sizes, ascending; connections are added to reach each. */
  idle: number[];
  connectConcurrency: number;
  /** After connecting, before reading RSS. */
  settleMs: number;
}

const QUICK: Settings = { publishers: 100, intervalMs: 1000, window: 4, warmupMs: 1000, phaseMs: 4000, drainMs: 5000, idle: [200, 1000], connectConcurrency: 50, settleMs: 1000 };
const FULL: Settings = { publishers: 500, intervalMs: 1000, window: 4, warmupMs: 2000, phaseMs: 20_000, drainMs: 10_000, idle: [1000, 10_000], connectConcurrency: 50, settleMs: 3000 };

const CONSUMER = { username: 'bench-consumer', password: 'bench-consumer-secret' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PhaseFigures {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  acked: number;
  unacked: number;
  errors: number;
  brokerCpuPercent: number;
  brokerCpuMsPer1000: number;
  clientCpuPercent: number;
}

/** One publish phase, with the broker's CPU over the same span. */
async function phase(clients: MqttClientsWorker, brokerPid: number, cmd: Parameters<MqttClientsWorker['publish']>[0]): Promise<PhaseFigures> {
  const before = processUsage(brokerPid);
  const t0 = performance.now();
  const r: PublishResult = await clients.publish(cmd);
  const seconds = (performance.now() - t0) / 1000;
  const cpuS = processUsage(brokerPid).cpuS - before.cpuS;
  const sorted = r.latenciesMs.sort((a, b) => a - b);
  return {
    perSecond: r.ackedInWindow / (r.windowMs / 1000),
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    acked: r.acked,
    unacked: r.unacked,
    errors: r.errors,
    brokerCpuPercent: (cpuS / seconds) * 100,
    brokerCpuMsPer1000: r.acked > 0 ? (cpuS * 1000 * 1000) / r.acked : Number.NaN,
    clientCpuPercent: r.cpuPercent,
  };
}

interface IngestFigures {
  rate: PhaseFigures;
  saturation: PhaseFigures;
  /** Hub: batches stored by the archive; Mosquitto: batches the subscriber received. */
  landed: number;
}

async function ingest(ctx: ScenarioContext, s: Settings, brokerUrl: string, brokerPid: number, devices: readonly DeviceCredential[], landed: () => Promise<number>): Promise<Omit<IngestFigures, 'landed'> & { landed: number; sent: number }> {
  const clients = new MqttClientsWorker(ctx.cores.load, devices.length);
  try {
    const c = await clients.connect({ url: brokerUrl, devices: [...devices], concurrency: s.connectConcurrency, timeoutMs: 60_000 });
    ctx.log(`${c.connected} publishers connected in ${(c.ms / 1000).toFixed(1)} s`);
    const rate = await phase(clients, brokerPid, { op: 'publish', mode: 'rate', intervalMs: s.intervalMs, warmupMs: s.warmupMs, durationMs: s.phaseMs, drainMs: s.drainMs });
    ctx.log(`rate: ${rate.perSecond.toFixed(0)}/s, p50 ${rate.p50Ms.toFixed(2)} ms, p99 ${rate.p99Ms.toFixed(2)} ms, broker CPU ${rate.brokerCpuPercent.toFixed(0)}%`);
    const saturation = await phase(clients, brokerPid, { op: 'publish', mode: 'closed', window: s.window, warmupMs: s.warmupMs, durationMs: s.phaseMs, drainMs: s.drainMs });
    ctx.log(
      `saturation: ${saturation.perSecond.toFixed(0)}/s, p99 ${saturation.p99Ms.toFixed(1)} ms, broker CPU ${saturation.brokerCpuPercent.toFixed(0)}%, clients CPU ${saturation.clientCpuPercent.toFixed(0)}%, unacked ${saturation.unacked}`,
    );
    const sent = rate.acked + saturation.acked;
    // What was acknowledged must have landed; give a subscriber a moment to catch up.
    const deadline = Date.now() + 10_000;
    let n = await landed();
    while (n < sent && Date.now() < deadline) {
      await sleep(200);
      n = await landed();
    }
    return { rate, saturation, landed: n, sent };
  } finally {
    await clients.stop();
  }
}

interface IdleFigures {
  baselineBytes: number;
  levels: Array<{ connections: number; rssBytes: number; perConnectionBytes: number; connectMs: number }>;
}

/** Connects idle devices in steps up to each level, reading the broker's RSS after each. */
async function idle(ctx: ScenarioContext, s: Settings, brokerUrl: string, brokerPid: number, devices: readonly DeviceCredential[]): Promise<IdleFigures> {
  const clients = new MqttClientsWorker(ctx.cores.load, devices.length);
  try {
    await sleep(s.settleMs);
    const baselineBytes = processUsage(brokerPid).rssBytes;
    const levels: IdleFigures['levels'] = [];
    let connected = 0;
    for (const level of s.idle) {
      const c = await clients.connect({ url: brokerUrl, devices: devices.slice(connected, level), concurrency: s.connectConcurrency, timeoutMs: 120_000 });
      connected = level;
      await sleep(s.settleMs);
      const rssBytes = processUsage(brokerPid).rssBytes;
      levels.push({ connections: level, rssBytes, perConnectionBytes: (rssBytes - baselineBytes) / level, connectMs: c.ms });
      ctx.log(`${level} idle connections (${c.connected} new in ${(c.ms / 1000).toFixed(1)} s): RSS ${(rssBytes / MiB).toFixed(1)} MiB (+${((rssBytes - baselineBytes) / level / 1024).toFixed(1)} KiB each)`);
    }
    return { baselineBytes, levels };
  } finally {
    await clients.stop();
  }
}

async function run(ctx: ScenarioContext) {
  const s = ctx.quick ? QUICK : FULL;
  const temp: string[] = [];
  const stops: Array<() => Promise<void>> = [];
  const dir = async (prefix: string) => {
    const d = await mkdtemp(join(tmpdir(), prefix));
    temp.push(d);
    return d;
  };
  const stopAll = async () => {
    while (stops.length) await stops.pop()!().catch((err: unknown) => ctx.log(`cleanup: ${(err as Error).message}`));
  };
  try {
    // 1. Ingest on the hub: devices enrolled through REST.
    const hubA: Hub = await startHub({ cores: ctx.cores.sut, data: await dir('edgeml-bench-ingest-hub-'), files: s.publishers + 1024 });
    stops.push(hubA.stop);
    const ids = Array.from({ length: s.publishers }, (_, i) => `ingest-${String(i).padStart(5, '0')}`);
    const enrolled = await enrollThroughRest(hubA, ids);
    ctx.log(`hub on ${hubA.mqtt} (pid ${hubA.pid}); ${ids.length} devices enrolled through REST in ${(enrolled.ms / 1000).toFixed(1)} s`);
    const hubIngest = await ingest(ctx, s, `mqtt://${hubA.mqtt}`, hubA.pid, enrolled.devices, () => hubMetric(hubA, 'edgeml_telemetry_batches_stored_total'));
    await stopAll();

    // 2. The same on Mosquitto, with a subscriber taking every batch.
    const mosqA: Mosquitto = await startMosquitto({ cores: ctx.cores.sut, auth: { devices: enrolled.devices, consumer: CONSUMER }, files: enrolled.devices.length + 1024, log: ctx.log });
    stops.push(mosqA.stop);
    const consumer = new MqttClientsWorker(ctx.cores.load, 16);
    stops.push(() => consumer.stop());
    await consumer.consume({ url: mosqA.url, ...CONSUMER, timeoutMs: 15_000 });
    const mosqIngest = await ingest(ctx, s, mosqA.url, mosqA.pid, enrolled.devices, () => consumer.consumed());
    await stopAll();

    // 3. Idle connections: a fresh hub whose store already holds the devices.
    const maxIdle = s.idle.at(-1)!;
    const idleIds = Array.from({ length: maxIdle }, (_, i) => `idle-${String(i).padStart(5, '0')}`);
    const hubBData = await dir('edgeml-bench-idle-hub-');
    const idleDevices = await seedDevices(hubBData, idleIds);
    const hubB = await startHub({ cores: ctx.cores.sut, data: hubBData, files: maxIdle + 1024 });
    stops.push(hubB.stop);
    ctx.log(`hub on ${hubB.mqtt} (pid ${hubB.pid}) with ${maxIdle} devices in its store`);
    const hubIdle = await idle(ctx, s, `mqtt://${hubB.mqtt}`, hubB.pid, idleDevices);
    await stopAll();

    const mosqB = await startMosquitto({ cores: ctx.cores.sut, auth: { devices: idleDevices }, files: idleDevices.length + 1024, log: ctx.log });
    stops.push(mosqB.stop);
    const mosqIdle = await idle(ctx, s, mosqB.url, mosqB.pid, idleDevices);
    await stopAll();

    for (const [who, f] of [['hub', hubIngest], ['mosquitto', mosqIngest]] as const) {
      if (f.landed < f.sent) throw new Error(`${who}: ${f.sent} batches acknowledged but only ${f.landed} ${who === 'hub' ? 'stored' : 'delivered to the subscriber'}`);
    }

    const rateLabel = `${s.publishers} devices × 1 batch per ${s.intervalMs / 1000} s`;
    const satLabel = `${s.publishers} devices × ${s.window} in flight`;
    const rows: Row[] = [
      {
        metric: `batches/s acknowledged, ${satLabel}`,
        unit: 'batches/s',
        edgeml: hubIngest.saturation.perSecond,
        peer: mosqIngest.saturation.perSecond,
        better: 'higher',
        note:
          `edgeml stores before the PUBACK (broker CPU ${hubIngest.saturation.brokerCpuPercent.toFixed(0)}%), the peer routes to a QoS 1 subscriber (broker CPU ${mosqIngest.saturation.brokerCpuPercent.toFixed(0)}%)` +
          (mosqIngest.saturation.clientCpuPercent > 85 ? `; the load generator at ${mosqIngest.saturation.clientCpuPercent.toFixed(0)}% CPU made the peer's figure a floor` : ''),
      },
      { metric: `broker CPU per 1,000 batches, ${satLabel}`, unit: 'ms', edgeml: hubIngest.saturation.brokerCpuMsPer1000, peer: mosqIngest.saturation.brokerCpuMsPer1000, better: 'lower' },
      { metric: `p99 publish-to-PUBACK, ${satLabel}`, unit: 'ms', edgeml: hubIngest.saturation.p99Ms, peer: mosqIngest.saturation.p99Ms, better: 'lower' },
      { metric: `p50 publish-to-PUBACK, ${rateLabel}`, unit: 'ms', edgeml: hubIngest.rate.p50Ms, peer: mosqIngest.rate.p50Ms, better: 'lower' },
      { metric: `p99 publish-to-PUBACK, ${rateLabel}`, unit: 'ms', edgeml: hubIngest.rate.p99Ms, peer: mosqIngest.rate.p99Ms, better: 'lower' },
    ];
    hubIdle.levels.forEach((h, i) => {
      const m = mosqIdle.levels[i]!;
      rows.push({ metric: `broker memory per idle connection, ${h.connections} devices`, unit: 'KiB', edgeml: h.perConnectionBytes / 1024, peer: m.perConnectionBytes / 1024, better: 'lower' });
    });
    const hubTop = hubIdle.levels.at(-1)!;
    const mosqTop = mosqIdle.levels.at(-1)!;
    rows.push(
      { metric: `broker RSS with ${hubTop.connections} idle devices`, unit: 'MiB', edgeml: hubTop.rssBytes / MiB, peer: mosqTop.rssBytes / MiB, better: 'lower' },
      {
        metric: `connections/s, ${s.idle[0]}→${hubTop.connections} devices, ${s.connectConcurrency} at a time`,
        unit: 'conn/s',
        edgeml: (hubTop.connections - (s.idle.at(-2) ?? 0)) / (hubTop.connectMs / 1000),
        peer: (mosqTop.connections - (s.idle.at(-2) ?? 0)) / (mosqTop.connectMs / 1000),
        better: 'higher',
        note: 'connect + subscribe to desired and cmd, as the agent does',
      },
    );
    return {
      rows,
      details: {
        settings: s,
        cores: ctx.cores,
        mosquitto: mosqA.version,
        restEnrollment: { devices: s.publishers, ms: enrolled.ms },
        hub: { ingest: hubIngest, idle: hubIdle },
        mosquittoResults: { ingest: mosqIngest, idle: mosqIdle },
      },
    };
  } finally {
    await stopAll();
    for (const d of temp) await rm(d, { recursive: true, force: true });
  }
}

export const scenario: Scenario = {
  name: 'telemetry-ingest',
  title: 'Telemetry ingest: QoS 1 batches acknowledged (stored), publish-to-PUBACK latency, memory per idle connection',
  peer: 'Mosquitto (Debian), password file + per-device ACL, a QoS 1 subscriber',
  run,
};

if (process.argv[1] === fileURLToPath(import.meta.url)) await runStandalone(scenario);
