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

/** How long a cancelled docker command gets to stop after SIGINT before SIGKILL. */
const CANCEL_GRACE_MS = 10_000;

/**
 * Runs `docker ARGS`, passing each output line to `onLine`; resolves with the exit code. On abort,
 * the whole process group (the CLI and its buildx plugin) gets SIGINT, then SIGKILL, and the
 * promise settles only once the process is gone, so a cancelled build cannot push afterwards.
 */
function docker(args: string[], onLine: (line: string, stream: 'stdout' | 'stderr') => void, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new EdgemlError(ErrorCodes.HUB_BUILD_CANCELLED, 'the build was cancelled'));
    const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let killTimer: NodeJS.Timeout | undefined;
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        // already gone
      }
    };
    const onAbort = () => {
      signalGroup('SIGINT');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), CANCEL_GRACE_MS);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    createInterface({ input: child.stdout }).on('line', (line) => onLine(line, 'stdout'));
    createInterface({ input: child.stderr }).on('line', (line) => onLine(line, 'stderr'));
    child.once('error', (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      if (err.code === 'ENOENT') reject(failed('the docker CLI is not installed on the hub: install Docker Engine with the buildx plugin (on a test machine: bash scripts/rig/setup.sh)', err));
      else reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(new EdgemlError(ErrorCodes.HUB_BUILD_CANCELLED, 'the build was cancelled'));
      else resolve(code ?? 1);
    });
  });
}

/** Runs docker and returns its stdout lines; a non-zero exit fails with the last lines of output. */
async function dockerOrFail(args: string[], what: string, onLog: (line: string) => void, signal?: AbortSignal): Promise<string[]> {
  const stdout: string[] = [];
  const tail: string[] = [];
  const code = await docker(
    args,
    (line, stream) => {
      if (stream === 'stdout') stdout.push(line);
      tail.push(line);
      if (tail.length > 5) tail.shift();
      onLog(line);
    },
    signal,
  );
  if (code !== 0) throw failed(`${what} failed (exit ${code}): ${tail.join(' | ')}`);
  return stdout;
}

/** Says which piece is missing (Docker, the daemon, buildx) before a build starts. */
async function checkBuildTools(): Promise<void> {
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
  await checkBuildTools();
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
