/**
 * A real hub for a benchmark: `bin/edgeml hub start` (dist/) on loopback port 0, pinned to the
 * system-under-test cores, ready once it logs `hub ready` with the ports it bound. Devices are
 * enrolled through REST, or, for thousands of idle devices, written into the store file before the
 * hub starts (REST enrollment rewrites the whole store per device: see bench/README.md).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { emptyHubData } from '../../hub/store/hub-data.js';
import type { DeviceRecord } from '../../hub/store/store.js';
import { hashSecret } from '../../shared/secrets.js';
import { EDGEML_BIN, EdgemlProcess } from '../../test/helpers/edgeml-process.js';
import { enrollDevices } from '../../test/simulator/enroll.js';
import type { DeviceCredential } from './mqtt-clients.js';
import { spawnPinned } from './proc.js';

export interface BenchHub {
  url: string;
  /** `HOST:PORT` of its MQTT broker. */
  mqtt: string;
  adminKey: string;
  pid: number;
  process: EdgemlProcess;
  stop(): Promise<void>;
}

export async function startBenchHub(opts: { cores: string; data: string; files?: number; args?: string[]; env?: NodeJS.ProcessEnv }): Promise<BenchHub> {
  const child = spawnPinned(
    opts.cores,
    process.execPath,
    [EDGEML_BIN, 'hub', 'start', '--data', opts.data, '--http', '127.0.0.1:0', '--mqtt', '127.0.0.1:0', ...(opts.args ?? [])],
    opts.files ?? 4096,
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } },
  );
  const proc = new EdgemlProcess(child);
  // Drop the log lines as they come: a long run would otherwise keep every one of them.
  const trim = setInterval(() => proc.logs.splice(0, Math.max(0, proc.logs.length - 200)), 1000);
  const stop = async () => {
    clearInterval(trim);
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
    await proc.kill('SIGTERM');
    clearTimeout(timer);
  };
  try {
    const ready = await proc.waitForLog('hub ready', (l) => l.msg === 'hub ready', 60_000);
    const adminKey = (await readFile(join(opts.data, 'admin.key'), 'utf8')).trim();
    return { url: `http://${String(ready.http)}`, mqtt: String(ready.mqtt), adminKey, pid: child.pid!, process: proc, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Enrolls `ids` through REST (`POST /api/v1/devices`), `concurrency` at a time. */
export async function enrollThroughRest(hub: BenchHub, ids: readonly string[], opts: { concurrency?: number; labels?: Record<string, string> } = {}): Promise<{ devices: DeviceCredential[]; ms: number }> {
  const e = await enrollDevices(hub, ids.map((id) => ({ id, labels: opts.labels ?? { bench: 'true' } })), opts.concurrency ?? 8, () => Date.now());
  return { devices: ids.map((id) => ({ id, token: e.tokens[id]! })), ms: e.ms };
}

/**
 * Writes a hub store holding `ids` as enrolled devices into `data` before any hub has started
 * there, with tokens made here (the hub keeps only their sha256, as enrollment does).
 */
export async function seedDevices(data: string, ids: readonly string[]): Promise<DeviceCredential[]> {
  await mkdir(data, { recursive: true, mode: 0o700 });
  const store = emptyHubData();
  const now = new Date().toISOString();
  const devices = ids.map((id) => ({ id, token: `bench-${randomBytes(24).toString('base64url')}` }));
  for (const d of devices) {
    const record: DeviceRecord = {
      id: d.id,
      labels: { bench: 'true' },
      tokenHash: hashSecret(d.token),
      enrolledAt: now,
      enrolledBy: { keyId: 'bench', keyName: 'bench seed' },
      revokedAt: null,
      observed: { status: null, offlineReason: null, onlineSince: null, lastSeen: null, facts: null },
    };
    store.devices[d.id] = record;
  }
  await writeFile(join(data, 'hub.json'), JSON.stringify(store), { mode: 0o600 });
  return devices;
}

/** A Prometheus counter or gauge of the hub's `GET /metrics`. */
export async function hubMetric(hub: BenchHub, name: string): Promise<number> {
  const res = await request(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${hub.adminKey}` }, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}: ${text.slice(0, 200)}`);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`GET /metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}
