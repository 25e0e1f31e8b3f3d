/**
 * A real hub for a benchmark: `bin/edgeml hub start` (dist/) on loopback port 0, pinned to the
 * system-under-test cores when asked, ready once it logs `hub ready` with the ports it bound; its
 * REST API with the admin key (`call`) and its metrics (`hubMetric`). Devices are
 * enrolled through REST, or, for thousands of idle devices, written into the store file before the
 * hub starts (REST enrollment rewrites the whole store per device: see bench/README.md).
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { emptyHubData } from '../../hub/store/hub-data.js';
import type { DeviceRecord } from '../../hub/store/store.js';
import { hashSecret } from '../../shared/secrets.js';
import { EDGEML_BIN, EdgemlProcess } from '../../test/helpers/edgeml-process.js';
import { enrollDevices } from '../simulator/enroll.js';
import type { DeviceCredential } from './mqtt-clients.js';
import { spawnPinned } from './processes.js';

export interface Hub {
  url: string;
  /** `HOST:PORT` of its MQTT broker. */
  mqtt: string;
  adminKey: string;
  pid: number;
  process: EdgemlProcess;
  /** SIGTERM, then SIGKILL after 15 s; resolves once it has exited. */
  stop(): Promise<void>;
}

export interface HubOptions {
  data: string;
  /** `taskset -c` cores for the hub process (the system under test); omitted: not pinned. */
  cores?: string;
  /** Open files it needs (`prlimit`, with `cores` only); omitted: this process's limit. */
  files?: number;
  /** More `hub start` flags, e.g. `['--registry', HOST:PORT]`. */
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** Starts `edgeml hub start` on free loopback ports and waits for "hub ready". */
export async function startHub(o: HubOptions): Promise<Hub> {
  const args = [EDGEML_BIN, 'hub', 'start', '--data', o.data, '--http', '127.0.0.1:0', '--mqtt', '127.0.0.1:0', ...(o.args ?? [])];
  const options = { stdio: ['ignore', 'pipe', 'pipe'] as StdioOptions, env: { ...process.env, ...(o.env ?? {}) } };
  const child = o.cores ? spawnPinned(o.cores, process.execPath, args, { ...options, files: o.files }) : spawn(process.execPath, args, options);
  const proc = new EdgemlProcess(child);
  // Drop the log lines as they come: a long run would otherwise keep every one of them.
  const trim = setInterval(() => proc.logs.splice(0, Math.max(0, proc.logs.length - 200)), 1000).unref();
  const stop = async () => {
    clearInterval(trim);
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
    await proc.kill('SIGTERM');
    clearTimeout(timer);
  };
  try {
    const ready = await proc.waitForLog('hub ready', (l) => l.msg === 'hub ready', 60_000);
    const adminKey = (await readFile(join(o.data, 'admin.key'), 'utf8')).trim();
    return { url: `http://${String(ready.http)}`, mqtt: String(ready.mqtt), adminKey, pid: child.pid!, process: proc, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const REQUEST_TIMEOUT_MS = 60_000;

/** A REST call with the admin key; throws on a status of 300 or more. */
export async function call<T>(hub: Pick<Hub, 'url' | 'adminKey'>, method: 'GET' | 'POST' | 'DELETE', path: string, json?: unknown): Promise<T> {
  const res = await request(`${hub.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${hub.adminKey}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path} answered ${res.statusCode}: ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

/** Enrolls `ids` through REST (`POST /api/v1/devices`), `concurrency` at a time. */
export async function enrollThroughRest(hub: Hub, ids: readonly string[], opts: { concurrency?: number; labels?: Record<string, string> } = {}): Promise<{ devices: DeviceCredential[]; ms: number }> {
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
export async function hubMetric(hub: Hub, name: string): Promise<number> {
  const res = await request(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${hub.adminKey}` }, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}: ${text.slice(0, 200)}`);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`GET /metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}
