/**
 * Telemetry end to end with a real hub, agent, scoring container and registry: a scoring load of
 * known size through the device's gateway, then the same while the hub is killed (-9) and
 * restarted. The hub's totals match the load exactly, every telemetry batch is stored once, the
 * latency percentiles agree with the client's own within the histogram's buckets, and capture at
 * rate 1 holds every request and answer, redacted and cut as the deployment says.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import test from 'ava';
import { request } from 'undici';
import type { DeploymentCreated } from '../../shared/api/deployments.js';
import type { Image } from '../../shared/api/images.js';
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import type { CaptureSample } from '../../shared/protocol.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startAgent, startHub, tempDir } from '../helpers/edgeml-process.js';
import { enrollDevice, servingRevision } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;
const CAPTURE_CAP = 64;

interface ServiceTelemetry {
  service: string;
  requests: number;
  errors: number;
  rejected: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  devices: Array<{ device: string; requests: number; errors: number; rejected: number }>;
}

/** The index of the histogram bucket that holds `ms`. */
const bucketOf = (ms: number) => {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
  return i === -1 ? LATENCY_BOUNDS_MS.length : i;
};

function clientPercentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Every stored line of one kind in a hub's telemetry directory, compacted (gzipped) files included. */
async function storedLines(dir: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/\.jsonl(\.gz)?$/.test(entry.name)) {
        const raw = await readFile(path);
        const text = entry.name.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
        for (const line of text.split('\n')) if (line.trim()) out.push(JSON.parse(line) as Record<string, unknown>);
      }
    }
  };
  await walk(dir);
  return out;
}

test('scoring load: exact totals at the hub, plausible percentiles, every request captured; a hub killed mid-load loses and doubles nothing', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, LONG);
  const deviceId = `tel-${randomBytes(3).toString('hex')}`;
  t.teardown(async () => {
    await deleteFromRegistry(registry, `${prefix}/js`, 'v1').catch(() => undefined);
  });

  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  t.is(image.status, 'succeeded');

  const token = await enrollDevice(hub, deviceId, { site: 'tel' });
  const data = await tempDir(t, 'edgeml-agent-');
  const agent = await startAgent(t, { mqttUrl: `mqtt://${hub.mqtt}`, deviceId, token, data, extraArgs: ['--platform', 'linux/amd64', '--telemetry-interval', '1s'] });
  const deployed = jsonOf<DeploymentCreated>(
    t,
    await cli('deploy', 'scorer', '--build', String(image.id), '--target', 'site=tel', '--max-queue', '50', '--capture-rate', '1', '--capture-max-body', String(CAPTURE_CAP), '--capture-redact', 'id', '--json'),
  );
  const { gateway } = await servingRevision(hub, deviceId, 1, LONG);
  t.teardown(() => agent.kill('SIGTERM'));

  const sent: string[] = [];
  /** `count` requests, `concurrency` at a time; returns each one's latency in ms as the client saw it. */
  const load = async (count: number, concurrency: number): Promise<number[]> => {
    const latencies: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const id = `req-${sent.length}-${next++}`;
        sent.push(id);
        const started = performance.now();
        const res = await request(`${gateway}/v1/services/scorer/score`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${deployed.key}` },
          body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2], id }),
        });
        await res.body.dump();
        latencies.push(performance.now() - started);
        if (res.statusCode !== 200) throw new Error(`a scoring request answered ${res.statusCode}`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return latencies;
  };
  const telemetry = async () => jsonOf<ServiceTelemetry>(t, await cli('telemetry', 'scorer', '--since', '1h', '--json'));
  const totalsReach = (n: number) => waitFor(`the hub to count ${n} requests`, async () => {
    const report = await telemetry();
    return report.requests >= n ? report : undefined;
  }, 120_000, 500);

  // 1. A known load; the hub's figures come from the agent's interval batches.
  const FIRST = 150;
  const latencies = (await load(FIRST, 3)).sort((a, b) => a - b);
  const first = await totalsReach(FIRST);
  t.like(first, { service: 'scorer', requests: FIRST, errors: 0, rejected: 0 });
  t.like(first.devices, [{ device: deviceId, requests: FIRST, errors: 0, rejected: 0 }]);
  // The gateway times part of what the client times, so its estimate never sits in a higher bucket
  // than the client's. How much lower is the client's own overhead, which a loaded machine makes
  // as large as it likes (a client p99 of 387 ms beside the gateway's 75 ms was seen), so only the
  // upper side is a fact to assert.
  for (const p of [50, 95, 99] as const) {
    const hubValue = first[`p${p}`];
    t.true(hubValue !== null && hubValue > 0, `p${p}: the hub has a figure (${hubValue})`);
    const client = bucketOf(clientPercentile(latencies, p));
    const estimated = bucketOf(hubValue!);
    t.true(estimated <= client, `p${p}: the hub's ${hubValue} ms is in a higher bucket than the client's ${clientPercentile(latencies, p).toFixed(1)} ms`);
  }

  // 2. The hub killed mid-load and restarted on its data and addresses: the agent keeps scoring and
  //    queues its batches; afterwards the hub has each batch once and the totals still match.
  const SECOND = 100;
  const during = load(SECOND, 2);
  await hub.kill('SIGKILL');
  await during;
  const again = await startHub(t, ['--registry', registry, '--http', hub.http, '--mqtt', hub.mqtt], { data: hub.data, env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cliAgain = cliFor(again, again.adminKey, LONG);
  const after = await waitFor(`the restarted hub to count ${FIRST + SECOND} requests`, async () => {
    const report = jsonOf<ServiceTelemetry>(t, await cliAgain('telemetry', 'scorer', '--since', '1h', '--json'));
    return report.requests >= FIRST + SECOND ? report : undefined;
  }, 120_000, 500);
  t.like(after, { requests: FIRST + SECOND, errors: 0, rejected: 0 });

  const stored = await storedLines(join(again.data, 'telemetry', 'metrics'));
  const batches = stored.map((line) => String(line.batch));
  t.is(new Set(batches).size, batches.length, 'no batch stored twice');
  const requests = stored.reduce((sum, line) => sum + ((line.data as { services: Record<string, { requests: number }> }).services.scorer?.requests ?? 0), 0);
  t.is(requests, FIRST + SECOND, 'the stored batches add up to the load');

  // 3. Captures at rate 1: every request with its answer, the id redacted, the answers cut at the cap.
  const out = join(await tempDir(t, 'edgeml-capture-'), 'scorer.jsonl');
  const exported = await waitFor('every capture at the hub', async () => {
    const summary = jsonOf<{ samples: number }>(t, await cliAgain('capture', 'export', 'scorer', '--since', '1h', '--out', out, '--json'));
    return summary.samples >= FIRST + SECOND ? summary : undefined;
  }, 120_000, 1000);
  t.is(exported.samples, FIRST + SECOND);
  const samples = (await readFile(out, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as CaptureSample & { device: string });
  t.is(samples.length, sent.length);
  for (const s of samples) {
    t.like(s, { device: deviceId, service: 'scorer', revision: 1, status: 200, models: [{ name: 'iris-linear', version: 1 }] });
    t.deepEqual(s.request.json, { features: [5.1, 3.5, 1.4, 0.2], id: '[redacted]' });
    t.true(s.response.truncated && s.response.bytes > CAPTURE_CAP && Buffer.byteLength(s.response.text ?? '') <= CAPTURE_CAP, 'answers over the cap are cut and marked');
  }
  t.false(JSON.stringify(samples).includes('req-'), 'no request id left the device');
});
