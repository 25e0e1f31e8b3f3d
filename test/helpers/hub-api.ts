/**
 * A minimal REST client for tests that talk to a running hub over real HTTP, independent of the
 * CLI, so a CLI bug cannot hide a hub bug (or the other way round).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import type { Device } from '../../shared/api/devices.js';
import type { HubProcess } from './edgeml-process.js';
import { recordSecret, secretsInAnswer } from './secret-ledger.js';
import { waitFor } from './wait.js';

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
}

export interface ErrorAnswer {
  error: { code: string; message: string };
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const dispatchers = new Map<string, Dispatcher>();

/** For an https hub, a dispatcher trusting only its CA (read once per CA file); undici's default otherwise. */
export function hubDispatcher(hub: Pick<HubProcess, 'url'> & Partial<Pick<HubProcess, 'caFile'>>): { dispatcher?: Dispatcher } {
  if (!hub.url.startsWith('https:') || !hub.caFile) return {};
  let dispatcher = dispatchers.get(hub.caFile);
  if (!dispatcher) dispatchers.set(hub.caFile, (dispatcher = new Agent({ connect: { ca: readFileSync(hub.caFile, 'utf8') } })));
  return { dispatcher };
}

export async function api<T = unknown>(
  hub: Pick<HubProcess, 'url'> & Partial<Pick<HubProcess, 'caFile'>>,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  opts: { key?: string | null; json?: unknown; body?: Uint8Array; contentType?: string } = {},
): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = {};
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | Uint8Array | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.body) {
    headers['content-type'] = opts.contentType ?? 'application/octet-stream';
    body = opts.body;
  }
  const res = await request(`${hub.url}${path}`, { method, headers, body, ...hubDispatcher(hub) });
  const text = await res.body.text();
  let parsed: unknown = text;
  if ((res.headers['content-type'] ?? '').toString().includes('json') && text) parsed = JSON.parse(text);
  // Enrollments, deployments, API keys and rotations answer their new secret: the leak scan looks for it.
  for (const { kind, secret } of secretsInAnswer(parsed)) recordSecret(kind, secret, `${method} ${path}`);
  return { status: res.statusCode, body: parsed as T };
}

export async function download(hub: Pick<HubProcess, 'url'> & Partial<Pick<HubProcess, 'caFile'>>, path: string, key: string): Promise<{ status: number; bytes: Buffer; headers: Record<string, unknown> }> {
  const res = await request(`${hub.url}${path}`, { headers: { authorization: `Bearer ${key}` }, ...hubDispatcher(hub) });
  return { status: res.statusCode, bytes: Buffer.from(await res.body.arrayBuffer()), headers: res.headers };
}

/** Blob files and leftover temp files in a hub's data directory. */
export async function blobFiles(data: string): Promise<{ blobs: string[]; tmp: string[] }> {
  const list = (dir: string) => readdir(dir).catch(() => [] as string[]);
  return { blobs: await list(join(data, 'blobs', 'sha256')), tmp: await list(join(data, 'blobs', 'tmp')) };
}

/** Enrolls a device through the REST API and returns its token. */
export async function enrollDevice(hub: Pick<HubProcess, 'url' | 'adminKey'>, id: string, labels: Record<string, string> = {}): Promise<string> {
  const res = await api<{ token: string }>(hub, 'POST', '/api/v1/devices', { key: hub.adminKey, json: { id, labels } });
  if (res.status !== 201) throw new Error(`enrolling ${id} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.token;
}

export async function deviceOf(hub: Pick<HubProcess, 'url' | 'adminKey'>, id: string): Promise<Device> {
  return (await api<Device>(hub, 'GET', `/api/v1/devices/${id}`, { key: hub.adminKey })).body;
}

/** The device, online, reporting `revision` running (what an offline device last said proves nothing). */
export function servingRevision(hub: Pick<HubProcess, 'url' | 'adminKey'>, id: string, revision: number, timeoutMs: number): Promise<Device> {
  return waitFor(`${id} to serve revision ${revision}`, async () => {
    const d = await deviceOf(hub, id);
    const s = d.services[0];
    return d.status === 'online' && d.gateway && s?.phase === 'running' && s.servingRevision === revision ? d : undefined;
  }, timeoutMs, 200);
}
