/**
 * A loopback HTTP proxy in front of the rig's OCI registry that counts what crosses it: the bytes
 * of blob uploads (what a push really sends: blobs the registry already has, or mounts from another
 * repository, cost nothing), manifest uploads, and blob downloads. Pushes go through it by naming it
 * as the registry (`127.0.0.1:PORT/...`); like the rig's, it is plain HTTP on 127.0.0.0/8, which
 * Docker treats as an insecure registry. The Host header is passed on unchanged, so the registry's
 * upload URLs (Location) point back at the proxy and every chunk is counted.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RegistryCounts {
  /** Request bodies of blob uploads (POST/PATCH/PUT under /blobs/uploads/). */
  blobUploadBytes: number;
  /** Blob uploads finished (PUT answered 201). */
  blobsUploaded: number;
  /** Cross-repository mounts the registry accepted (201): a blob pushed without its bytes. */
  blobsMounted: number;
  /** Request bodies of manifest PUTs (indexes and image manifests). */
  manifestBytes: number;
  manifestsPut: number;
  /** Response bodies of blob GETs (pulls). */
  blobDownloadBytes: number;
}

export interface RegistryMeter {
  /** `127.0.0.1:PORT`: use it as the registry host. */
  host: string;
  /** The counts so far (a copy). */
  counts(): RegistryCounts;
  close(): Promise<void>;
}

const zero = (): RegistryCounts => ({ blobUploadBytes: 0, blobsUploaded: 0, blobsMounted: 0, manifestBytes: 0, manifestsPut: 0, blobDownloadBytes: 0 });

/** `after - before`, field by field. */
export function countsBetween(before: RegistryCounts, after: RegistryCounts): RegistryCounts {
  const out = zero();
  for (const k of Object.keys(out) as Array<keyof RegistryCounts>) out[k] = after[k] - before[k];
  return out;
}

export async function startRegistryMeter(registry: string): Promise<RegistryMeter> {
  const [upstreamHost, upstreamPort] = registry.split(':');
  const counts = zero();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0]!;
    const upload = /\/blobs\/uploads\//.test(path) && ['POST', 'PATCH', 'PUT'].includes(req.method ?? '');
    const mount = upload && req.method === 'POST' && /[?&]mount=/.test(req.url ?? '');
    const manifest = /\/manifests\/[^/]+$/.test(path) && req.method === 'PUT';
    const download = /\/blobs\/sha256:[a-f0-9]{64}$/.test(path) && req.method === 'GET';
    req.on('data', (chunk: Buffer) => {
      if (upload) counts.blobUploadBytes += chunk.length;
      else if (manifest) counts.manifestBytes += chunk.length;
    });
    const upstream = httpRequest({ host: upstreamHost, port: Number(upstreamPort), path: req.url, method: req.method, headers: req.headers }, (up) => {
      if (up.statusCode === 201 && upload && req.method === 'PUT') counts.blobsUploaded += 1;
      if (up.statusCode === 201 && mount) counts.blobsMounted += 1;
      if (up.statusCode === 201 && manifest) counts.manifestsPut += 1;
      if (download) up.on('data', (chunk: Buffer) => (counts.blobDownloadBytes += chunk.length));
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
