/**
 * The agent's telemetry against the real machine, the real Docker engine and the hub's real broker
 * (aedes, in-process, open auth so the test can listen on every device's telemetry topic): metrics
 * batches every interval with plausible figures, batches kept on disk while the broker is gone and
 * all delivered once it is back, and the oldest dropped and reported when the queue is full.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { loadAgentConfig, MIN_QUEUE_BYTES } from '../../agent/config.js';
import { startAgent } from '../../agent/main.js';
import { LABELS } from '../../agent/runtime/docker.js';
import { deviceSampler, systemProbes } from '../../agent/telemetry/device-metrics.js';
import { Outbox } from '../../agent/telemetry/outbox.js';
import { HEADER_BYTES } from '../../agent/telemetry/outbox-file.js';
import { startBroker, type Broker } from '../../hub/broker/broker.js';
import { systemClock } from '../../shared/clock.js';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, type MetricsBatch } from '../../shared/protocol.js';
import { parseDeviceTopic } from '../../shared/topics.js';
import { tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { openBrokerAuth } from '../helpers/open-broker-auth.js';
import { rig } from '../helpers/rig.js';
import { metricsBatch, serviceInterval } from '../helpers/telemetry-batches.js';
import { waitFor } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });
const outboxDir = (data: string) => join(data, 'telemetry', 'outbox');

/** A broker on `port` (0: any) that keeps every telemetry batch it gets, per device. */
async function telemetryBroker(port = 0) {
  const broker = await startBroker({ listen: { host: '127.0.0.1', port }, auth: openBrokerAuth, logger });
  const batches: Array<{ device: string; batch: MetricsBatch }> = [];
  const invalid: string[] = [];
  await broker.subscribe('edgeml/v1/dev/+/telemetry', (topic, payload) => {
    const decoded = decodeMessage('telemetry', payload);
    if (!decoded.ok) invalid.push(decoded.error);
    else if (decoded.value.kind === 'metrics') batches.push({ device: parseDeviceTopic(topic)!.deviceId, batch: decoded.value });
  });
  return { broker, invalid, of: (device: string) => batches.filter((b) => b.device === device).map((b) => b.batch) };
}

const portOf = (broker: Broker) => Number(broker.address.split(':').pop());

/** An agent in this process, on its own device id and data directory, with 1 s telemetry. */
async function agentOn(t: ExecutionContext, port: number, flags: Record<string, string> = {}) {
  const deviceId = `tel-${randomBytes(4).toString('hex')}`;
  const data = flags.data ?? (await tempDir(t, 'edgeml-agent-'));
  const config = loadAgentConfig({ flags: { hub: `mqtt://127.0.0.1:${port}`, deviceId, data, gateway: '127.0.0.1:0', telemetryInterval: '1s', ...flags }, env: {} });
  const agent = await startAgent(config, logger);
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= agent.close());
  t.teardown(close);
  return { deviceId, data, close };
}

/** Batch files waiting in the metrics lane (read-only: the agent owns the directory). */
async function queuedFiles(data: string): Promise<number> {
  return (await readdir(join(outboxDir(data), 'metrics')).catch(() => [])).filter((f) => f.endsWith('.batch')).length;
}

/** The ids a closed agent left in its outbox. */
async function leftInOutbox(data: string, limit: number): Promise<string[]> {
  const outbox = await Outbox.open(outboxDir(data), { limits: { metrics: limit, capture: limit }, maxBatchBytes: MAX_MESSAGE_BYTES, logger });
  const ids = new Set<string>();
  for (let b = await outbox.next(); b; b = await outbox.next()) ids.add(b.id);
  await outbox.close();
  return [...ids];
}

/** `m.PREFIX.N` → N, checking every id has the same per-process prefix. */
function counters(t: ExecutionContext, ids: string[]): number[] {
  const prefixes = new Set(ids.map((id) => id.slice(0, id.lastIndexOf('.'))));
  t.is(prefixes.size, 1, `one agent process, one id prefix: ${[...prefixes].join(', ')}`);
  return [...new Set(ids.map((id) => Number(id.slice(id.lastIndexOf('.') + 1))))].sort((a, b) => a - b);
}

const oneToN = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test('the real probes on this machine give plausible device figures', async (t) => {
  const sample = await deviceSampler({ probes: systemProbes(await tempDir(t)), clock: systemClock, logger })();
  t.truthy(sample.memory);
  t.true(sample.memory!.totalBytes > 0 && sample.memory!.usedBytes > 0 && sample.memory!.usedBytes < sample.memory!.totalBytes);
  t.truthy(sample.disk);
  t.true(sample.disk!.totalBytes > sample.disk!.usedBytes && sample.disk!.usedBytes > 0);
  t.true(sample.cpuPercent !== null && sample.cpuPercent >= 0 && sample.cpuPercent <= 100);
  t.true(sample.uptimeSeconds !== null && sample.uptimeSeconds > 0);
  t.truthy(sample.network);
  // A VM without sensors has none; where there is one, it reads like a temperature.
  t.true(sample.temperatureC === null || (sample.temperatureC > -40 && sample.temperatureC < 130));
});

test.serial('metrics batches arrive every interval with the device figures and the stats of the device\'s running containers', async (t) => {
  const { broker, of, invalid } = await telemetryBroker();
  t.teardown(() => broker.close());
  const { deviceId } = await agentOn(t, portOf(broker));
  // A container as the agent labels its own (the reconciler leaves it alone: no desired state).
  const name = `${deviceId}-probe-r1`;
  t.teardown(async () => void (await exec('docker', ['rm', '-f', name])));
  const run = await exec(
    'docker',
    ['run', '-d', '--name', name, '--platform', 'linux/amd64', '--network', 'host', '--label', `${LABELS.device}=${deviceId}`, '--label', `${LABELS.service}=probe`, '--label', `${LABELS.revision}=1`, '--label', `${LABELS.port}=1`, rig().baseImage, '/bin/busybox', 'sleep', '120'],
    { timeoutMs: 60_000 },
  );
  t.is(run.code, 0, run.stderr);

  const batches = await waitFor('three batches, the last with the container', () => {
    const got = of(deviceId);
    return got.length >= 3 && got.at(-1)!.containers.length > 0 && got;
  }, 30_000);
  t.deepEqual(invalid, []);
  const last = batches.at(-1)!;
  t.true(last.device.memory!.totalBytes > 0 && last.device.memory!.usedBytes <= last.device.memory!.totalBytes);
  t.true(last.device.disk!.totalBytes > last.device.disk!.usedBytes);
  t.true(last.device.uptimeSeconds! > 0);
  t.true(last.device.network !== null);
  const [container] = last.containers;
  t.is(container!.service, 'probe');
  t.is(container!.revision, 1);
  t.true(container!.cpuPercent !== null && container!.cpuPercent >= 0, 'CPU from two engine samples');
  t.true(container!.memoryBytes! > 0 && container!.memoryLimitBytes! > 0);
  t.deepEqual(last.outbox.dropped, { metrics: 0, capture: 0 });

  const ordered = [...batches].sort((a, b) => a.from.localeCompare(b.from));
  for (let i = 1; i < ordered.length; i++) t.is(ordered[i]!.from, ordered[i - 1]!.to, 'intervals back to back');
  for (const b of ordered) t.true(Date.parse(b.to) - Date.parse(b.from) < 5000, `interval ${b.from}..${b.to} near 1 s`);
});

test.serial('while the broker is gone batches stay on disk; once it is back every one arrives and the queue empties', async (t) => {
  let hub = await telemetryBroker();
  t.teardown(() => hub.broker.close());
  const port = portOf(hub.broker);
  const agent = await agentOn(t, port);
  await waitFor('a first batch', () => hub.of(agent.deviceId).length > 0, 20_000);
  const before = hub.of(agent.deviceId);

  await hub.broker.close();
  await waitFor('batches to pile up on disk', async () => (await queuedFiles(agent.data)) >= 3, 20_000);
  hub = await telemetryBroker(port);
  await waitFor('the backlog to drain', async () => hub.of(agent.deviceId).length >= 3 && (await queuedFiles(agent.data)) <= 1, 30_000);
  await agent.close();

  const received = [...before, ...hub.of(agent.deviceId)].map((b) => b.id);
  const left = await leftInOutbox(agent.data, 64 * 2 ** 20);
  const all = counters(t, [...received, ...left]);
  t.deepEqual(all, oneToN(all.length), 'every batch made was delivered or is still queued: none missing');
  t.true(left.length <= 1, `at most the last one waits (${left.length})`);
  t.deepEqual(hub.invalid, []);
});

test.serial('with a full queue the oldest batches are dropped and the next batch says how many', async (t) => {
  // A broker that is not there yet: its port, free again.
  const placeholder = await telemetryBroker();
  const port = portOf(placeholder.broker);
  await placeholder.broker.close();

  // The queue at its smallest, full of older batches: small ones first (the agent's batches are
  // about as big, so it drops them one at a time), then big ones, then small ones to the brim.
  const data = await tempDir(t, 'edgeml-agent-');
  const outbox = await Outbox.open(outboxDir(data), { limits: { metrics: MIN_QUEUE_BYTES, capture: MIN_QUEUE_BYTES }, maxBatchBytes: MAX_MESSAGE_BYTES, logger });
  const small: MetricsBatch['services'] = {};
  const big: MetricsBatch['services'] = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`svc-${i}`, serviceInterval()]));
  const fillers: string[] = [];
  for (const services of [...Array<MetricsBatch['services']>(20).fill(small), big, big, big, ...Array<MetricsBatch['services']>(200).fill(small)]) {
    const id = `fill-${String(fillers.length).padStart(3, '0')}`;
    const bytes = encodeMessage('telemetry', metricsBatch({ id, containers: [], services }));
    // Over the quota, the outbox would drop: that is the agent's part.
    if (outbox.size().metrics.bytes + bytes.length + HEADER_BYTES + id.length > MIN_QUEUE_BYTES) {
      if (services === big) continue;
      break;
    }
    await outbox.append({ id, lane: 'metrics', bytes });
    fillers.push(id);
  }
  await outbox.close();

  const agent = await agentOn(t, port, { data, telemetryQueue: `${Math.ceil(MIN_QUEUE_BYTES / 1024)}k` });
  const dropped = async () => (JSON.parse(await readFile(join(outboxDir(data), 'counters.json'), 'utf8')) as { dropped: { metrics: number } }).dropped.metrics;
  await waitFor('the agent to drop old batches', async () => (await dropped()) >= 2, 20_000);
  const hub = await telemetryBroker(port);
  t.teardown(() => hub.broker.close());
  await waitFor('the queue to drain', async () => (await queuedFiles(data)) <= 1, 30_000);
  // Drained, the queue drops no more: some batch made since says the final count.
  const total = await dropped();
  await waitFor('a batch reporting every drop', () => hub.of(agent.deviceId).some((b) => b.outbox.dropped.metrics === total), 10_000);
  await agent.close();

  const batches = hub.of(agent.deviceId);
  const reported = Math.max(...batches.map((b) => b.outbox.dropped.metrics));
  t.is(reported, total);
  // Only the oldest are missing, and each missing one was counted. A batch dropped while its
  // publish was under way counts only if that publish failed: what arrived was not dropped.
  const arrived = new Set(batches.filter((b) => b.id.startsWith('fill-')).map((b) => b.id));
  const missing = fillers.filter((id) => !arrived.has(id));
  t.true(missing.length > 0, 'old batches were dropped');
  // The oldest go first; one whose publish was under way when the queue overflowed is not dropped
  // (it is on its way), so the next oldest goes in its place: at most one hole among the oldest.
  t.true(missing.every((id) => fillers.indexOf(id) <= missing.length), `only the oldest are gone: ${missing.join(', ')}`);
  t.is(missing.length, reported, 'as many missing as reported dropped');
  const own = batches.filter((b) => b.id.startsWith('m.')).map((b) => b.id);
  const all = counters(t, [...own, ...(await leftInOutbox(data, MIN_QUEUE_BYTES))]);
  t.deepEqual(all, oneToN(all.length), "the agent's own batches all arrived");
});
