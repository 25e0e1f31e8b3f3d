/**
 * Registry tools for agent tests, over the rig's real registry:
 * - `pushVariant` makes a new image from a pushed one by editing its manifest (an extra layer of
 *   random bytes, extra environment), so a test gets an image whose new layer no engine has yet,
 *   without a build;
 * - `startRegistryGate` is a loopback HTTP proxy in front of the registry that can hold blob
 *   downloads, so a test can catch an agent in the middle of a pull.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { INDEX_TYPES, MANIFEST_TYPES } from '../../agent/runtime/image-size.js';
import { tarOf } from './tar.js';


const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
}

async function getJson<T>(url: string): Promise<{ body: T; raw: Buffer; type: string }> {
  const res = await request(url, { headers: { accept: [...INDEX_TYPES, ...MANIFEST_TYPES, 'application/json'].join(', ') } });
  const raw = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${raw.toString('utf8').slice(0, 200)}`);
  return { body: JSON.parse(raw.toString('utf8')) as T, raw, type: String(res.headers['content-type'] ?? '') };
}

async function putBlob(registry: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await request(`http://${registry}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  const location = String(start.headers.location);
  const url = new URL(location, `http://${registry}`);
  url.searchParams.set('digest', digest);
  const put = await request(url.toString(), { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`pushing blob ${digest}: ${put.statusCode} ${text.slice(0, 200)}`);
  return digest;
}

/**
 * A new image in `repo` from `source` (`registry/repo@sha256:…`) for one platform: with `layerBytes`
 * of random data in a new top layer, and `env` added to its configuration. Returns the digest of
 * the new (single-platform) manifest and of its new layer.
 */
export async function pushVariant(
  registry: string,
  source: string,
  platform: string,
  opts: { layerBytes?: number; env?: string[] } = {},
): Promise<{ digest: string; layer: string | null }> {
  const [, repo, digest] = /^[^/]+\/(.+)@(sha256:[a-f0-9]{64})$/.exec(source) ?? [];
  if (!repo || !digest) throw new Error(`not a digest reference: ${source}`);
  let manifest = (await getJson<{ manifests?: Descriptor[]; config: Descriptor; layers: Descriptor[]; mediaType: string }>(`http://${registry}/v2/${repo}/manifests/${digest}`)).body;
  if (manifest.manifests) {
    const [os, architecture] = platform.split('/');
    const wanted = manifest.manifests.find((m) => m.platform?.os === os && m.platform?.architecture === architecture);
    if (!wanted) throw new Error(`${source} has no ${platform} image`);
    manifest = (await getJson<typeof manifest>(`http://${registry}/v2/${repo}/manifests/${wanted.digest}`)).body;
  }
  const config = (await getJson<{ config: { Env?: string[] }; rootfs: { diff_ids: string[] } }>(`http://${registry}/v2/${repo}/blobs/${manifest.config.digest}`)).body;
  config.config.Env = [...(config.config.Env ?? []), ...(opts.env ?? [])];
  let layer: string | null = null;
  if (opts.layerBytes) {
    const tar = await tarOf([{ name: `opt/edgeml-test-noise-${randomBytes(4).toString('hex')}`, content: randomBytes(opts.layerBytes) }]);
    const gz = gzipSync(tar);
    layer = await putBlob(registry, repo, gz);
    config.rootfs.diff_ids.push(sha256(tar));
    manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: gz.length });
  }
  const configBytes = Buffer.from(JSON.stringify(config));
  manifest.config = { ...manifest.config, digest: await putBlob(registry, repo, configBytes), size: configBytes.length };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = sha256(manifestBytes);
  const put = await request(`http://${registry}/v2/${repo}/manifests/${manifestDigest}`, { method: 'PUT', body: manifestBytes, headers: { 'content-type': manifest.mediaType } });
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`pushing manifest: ${put.statusCode} ${text.slice(0, 200)}`);
  return { digest: manifestDigest, layer };
}

export interface RegistryGate {
  /** `127.0.0.1:PORT`, to use as the registry host of an image reference. */
  readonly host: string;
  /** Blob downloads of this digest wait until `release`. */
  hold(digest: string): void;
  release(): void;
  /** How many downloads of held blobs have arrived so far. */
  heldRequests(): number;
  close(): Promise<void>;
}

export async function startRegistryGate(registry: string): Promise<RegistryGate> {
  const held = new Set<string>();
  let waiting: Array<() => void> = [];
  let count = 0;
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    // Held for a client that has left meanwhile (an agent killed mid-pull): nothing to forward.
    if (res.destroyed || req.socket.destroyed) return;
    const [host, port] = registry.split(':');
    const upstream = httpRequest({ host, port: Number(port), path: req.url, method: req.method, headers: { ...req.headers, host: registry } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    // A client that left (an agent killed mid-pull) must not leave a registry connection open.
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  };
  const server = createServer((req, res) => {
    const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1];
    if (req.method === 'GET' && blob && held.has(blob)) {
      count += 1;
      waiting.push(() => forward(req, res));
      return;
    }
    forward(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    hold: (digest) => held.add(digest),
    release: () => {
      held.clear();
      const go = waiting;
      waiting = [];
      for (const fn of go) fn();
    },
    heldRequests: () => count,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
