/**
 * What a hub has stored, read from its data directory, for checking that a refused request stored
 * nothing. Only what a request could create or change is kept: rollout phases, desired-state
 * generations and device observations move on their own and would make any comparison flaky.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

// The store's shape as far as this needs it; read loosely so a field added later breaks nothing.
type Loose = Record<string, any>;

const values = (record: unknown): Loose[] => (record && typeof record === 'object' ? Object.values(record as Loose) : []);

export function storedProjection(doc: Loose): unknown {
  return {
    apiKeys: (doc.apiKeys ?? []).map((k: Loose) => [k.id, k.name, k.scope, k.hash, k.revokedAt ?? null]),
    models: Object.entries((doc.models ?? {}) as Record<string, Loose>).map(([name, m]: [string, Loose]) => [
      name,
      m.nextVersion,
      m.aliases,
      (m.versions ?? []).map((v: Loose) => [v.version, v.digest]),
    ]),
    manifests: Object.entries((doc.manifests ?? {}) as Record<string, Loose>).map(([name, m]: [string, Loose]) => [name, m.nextVersion, (m.versions ?? []).length]),
    images: [doc.images?.nextId, (doc.images?.records ?? []).map((i: Loose) => i.id)],
    devices: values(doc.devices).map((d) => [d.id, d.labels, d.tokenHash, d.revokedAt]),
    deployments: values(doc.deployments).map((d) => [d.service, d.revision, d.target, d.limits, d.capture ?? null, d.keyHash, d.image]),
    rollouts: [doc.rollouts?.nextId, (doc.rollouts?.records ?? []).map((r: Loose) => [r.id, r.service, r.kind, r.revision])],
  };
}

/** The projection of DATA/hub.json as it is on disk now, as canonical text for a diff. */
export async function storedState(data: string): Promise<string> {
  const doc = JSON.parse(await readFile(join(data, 'hub.json'), 'utf8')) as Loose;
  return JSON.stringify(storedProjection(doc), null, 1);
}

/** Names of the stored blobs (content-addressed files), sorted. */
export async function storedBlobs(data: string): Promise<string[]> {
  return (await readdir(join(data, 'blobs', 'sha256')).catch(() => [] as string[])).sort();
}

/** Resident memory of a process in bytes, from /proc (Linux). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}
