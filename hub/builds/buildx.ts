/**
 * The `docker buildx` adapter: builds a context for several platforms and pushes one multi-arch
 * index to the registry, streaming the build log line by line. Uses the default (docker) driver,
 * which needs no builder image from the internet.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFailed, dockerOrFail } from './docker-cli.js';
import { EXTRA_CA_SECRET } from './dockerfile.js';

export interface BuildxRequest {
  contextDir: string;
  platforms: string[];
  /** Full references, e.g. `127.0.0.1:5000/edgeml/iris-onnx:1`. */
  tags: string[];
  baseImage: string;
  /** A CA bundle for dependency installs inside the build (mounted as a secret, never a layer). */
  extraCaFile?: string;
  onLog: (line: string) => void;
  signal?: AbortSignal;
}

export interface BuildxResult {
  /** Digest of the pushed index. */
  digest: string;
  /** `linux/amd64` → digest of that platform's manifest. */
  platforms: Record<string, string>;
}

/**
 * With the docker driver, `FROM` resolves through the local image store first: a base image that
 * is present locally for one platform only hides the registry's multi-arch index ("no match for
 * platform in manifest"). Pulling each platform makes the local copy complete.
 */
async function pullBase(req: BuildxRequest): Promise<void> {
  for (const platform of req.platforms) {
    await dockerOrFail(['pull', '--quiet', '--platform', platform, req.baseImage], `pulling the base image ${req.baseImage} for ${platform}`, req.onLog, req.signal);
  }
}

interface IndexManifest {
  manifests?: Array<{ digest: string; platform?: { os: string; architecture: string; variant?: string } }>;
  layers?: unknown[];
}

/**
 * Each platform's manifest digest under `ref`. A build for one platform pushes a plain image
 * manifest rather than an index: then that one platform's image is `ref` itself.
 */
export async function platformDigests(ref: string, platforms: string[], signal?: AbortSignal): Promise<Record<string, string>> {
  const lines = await dockerOrFail(['buildx', 'imagetools', 'inspect', '--raw', ref], `inspecting ${ref}`, () => undefined, signal);
  const index = JSON.parse(lines.join('\n')) as IndexManifest;
  if (index.layers && platforms.length === 1) return { [platforms[0]!]: ref.slice(ref.lastIndexOf('@') + 1) };
  const out: Record<string, string> = {};
  for (const m of index.manifests ?? []) {
    if (!m.platform || m.platform.os === 'unknown') continue;
    out[[m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/')] = m.digest;
  }
  return out;
}

/** The caller checks the tools first (`checkBuildTools`), so a missing piece is named up front. */
export async function buildxBuild(req: BuildxRequest): Promise<BuildxResult> {
  await pullBase(req);
  const work = await mkdtemp(join(tmpdir(), 'edgeml-buildx-'));
  try {
    const metadata = join(work, 'metadata.json');
    const args = [
      'buildx', 'build',
      '--platform', req.platforms.join(','),
      // No bridge on these hosts; builds reach the registry and package indexes over the host network.
      '--network', 'host',
      '--progress', 'plain',
      // Attestations would add `unknown/unknown` entries to the index; devices need only images.
      '--provenance=false',
      '--build-arg', `BASE_IMAGE=${req.baseImage}`,
      '--metadata-file', metadata,
      '--push',
      ...req.tags.flatMap((tag) => ['--tag', tag]),
      ...(req.extraCaFile ? ['--secret', `id=${EXTRA_CA_SECRET},src=${req.extraCaFile}`] : []),
      req.contextDir,
    ];
    await dockerOrFail(args, 'docker buildx build', req.onLog, req.signal);
    const meta = JSON.parse(await readFile(metadata, 'utf8')) as { 'containerimage.digest'?: string };
    const digest = meta['containerimage.digest'];
    if (!digest) throw buildFailed('docker buildx build did not report the pushed digest');
    return { digest, platforms: await platformDigests(`${req.tags[0]!.replace(/:[^:/]+$/, '')}@${digest}`, req.platforms, req.signal) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
