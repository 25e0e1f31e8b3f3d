/**
 * The `docker buildx` adapter: builds a context for several platforms and pushes one multi-arch
 * index to the registry, streaming the build log line by line. Uses the default (docker) driver,
 * which needs no builder image from the internet.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
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

function failed(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, message, { cause });
}

/** Runs `docker ARGS`, passing each output line to `onLine`; resolves with the exit code. */
function docker(args: string[], onLine: (line: string) => void, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGINT' });
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(failed('the docker CLI is not installed on the hub: install Docker Engine with the buildx plugin (on a test machine: bash scripts/rig/setup.sh)', err));
      else reject(err);
    });
    child.once('close', (code) => resolve(code ?? 1));
  });
}

async function dockerOrFail(args: string[], what: string, onLog: (line: string) => void, signal?: AbortSignal): Promise<string[]> {
  const lines: string[] = [];
  const code = await docker(args, (line) => {
    lines.push(line);
    onLog(line);
  }, signal);
  if (code !== 0) throw failed(`${what} failed (exit ${code}): ${lines.slice(-5).join(' | ')}`);
  return lines;
}

/** Says which piece is missing (Docker, the daemon, buildx) before a build starts. */
export async function checkBuildTools(): Promise<void> {
  const quiet = () => undefined;
  if ((await docker(['version', '--format', '{{.Server.Version}}'], quiet)) !== 0) {
    throw failed('the Docker daemon is not reachable from the hub (is dockerd running? on a test machine: bash scripts/rig/setup.sh)');
  }
  if ((await docker(['buildx', 'version'], quiet)) !== 0) {
    throw failed('the docker buildx plugin is missing on the hub: install docker-buildx (Debian) or docker-buildx-plugin');
  }
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
}

export async function platformDigests(ref: string, signal?: AbortSignal): Promise<Record<string, string>> {
  const lines = await dockerOrFail(['buildx', 'imagetools', 'inspect', '--raw', ref], `inspecting ${ref}`, () => undefined, signal);
  const index = JSON.parse(lines.join('\n')) as IndexManifest;
  const out: Record<string, string> = {};
  for (const m of index.manifests ?? []) {
    if (!m.platform || m.platform.os === 'unknown') continue;
    out[[m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/')] = m.digest;
  }
  return out;
}

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
    if (!digest) throw failed('docker buildx build did not report the pushed digest');
    return { digest, platforms: await platformDigests(`${req.tags[0]!.replace(/:[^:/]+$/, '')}@${digest}`, req.signal) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
