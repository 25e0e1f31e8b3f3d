/**
 * How many bytes an image's layers take for one platform, read from its registry's manifests
 * (nothing is downloaded), so the pre-flight check can compare free disk with what the pull needs.
 * The engine API has no such call. Unknown (a registry that wants credentials, an odd manifest)
 * is null: the caller then checks only its margin.
 */
export const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
export const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
const REQUEST_TIMEOUT_MS = 10_000;

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

interface ManifestOrIndex {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/** `host[:port]/repo/path@sha256:…` → its parts; null for references this check cannot read. */
export function parseDigestRef(ref: string): { host: string; repository: string; digest: string } | null {
  const m = /^([^/]+)\/(.+)@(sha256:[a-f0-9]{64})$/.exec(ref);
  if (!m || !/[.:]|^localhost$/.test(m[1]!)) return null;
  return { host: m[1]!, repository: m[2]!, digest: m[3]! };
}

/** Docker talks plain http to loopback registries only; so do we. */
function schemeFor(host: string): string {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.split(':')[0]!;
  return name === 'localhost' || name === '::1' || /^127\./.test(name) ? 'http' : 'https';
}

async function fetchManifest(base: string, repository: string, reference: string): Promise<ManifestOrIndex | null> {
  const res = await fetch(`${base}/v2/${repository}/manifests/${reference}`, {
    headers: { accept: [...INDEX_TYPES, ...MANIFEST_TYPES].join(', ') },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (!res.ok) return null;
  return (await res.json()) as ManifestOrIndex;
}

/** `linux/arm64/v8` from an OCI platform (or Docker's `Os`/`Architecture`/`Variant`, renamed). */
export function platformOf(p: { os?: string; architecture?: string; variant?: string } | undefined): string {
  return [p?.os, p?.architecture, p?.variant].filter(Boolean).join('/');
}

export async function imageSizeFromRegistry(ref: string, platform: string): Promise<number | null> {
  const parsed = parseDigestRef(ref);
  if (!parsed) return null;
  const base = `${schemeFor(parsed.host)}://${parsed.host}`;
  try {
    let manifest = await fetchManifest(base, parsed.repository, parsed.digest);
    if (manifest?.manifests) {
      const wanted = manifest.manifests.find((d) => platformOf(d.platform) === platform);
      manifest = wanted ? await fetchManifest(base, parsed.repository, wanted.digest) : null;
    }
    if (!manifest?.layers) return null;
    return manifest.layers.reduce((sum, l) => sum + l.size, manifest.config?.size ?? 0);
  } catch {
    return null;
  }
}
