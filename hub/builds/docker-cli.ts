/**
 * Running the docker CLI from the hub: line-by-line output, cancellation of the whole process group,
 * and the up-front check that names whichever piece of the build toolchain is missing.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

export function buildFailed(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, message, { cause });
}

export function buildCancelled(): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_BUILD_CANCELLED, 'the build was cancelled');
}

/** The longest a quick docker command (version, inspect, logs, rm) may take: a wedged daemon must not stall the queue. */
export const QUICK_COMMAND_MS = 30_000;

/** The build's signal, or a deadline for a quick command, whichever comes first. */
export function quick(signal?: AbortSignal): AbortSignal {
  return signal ? AbortSignal.any([signal, AbortSignal.timeout(QUICK_COMMAND_MS)]) : AbortSignal.timeout(QUICK_COMMAND_MS);
}

/**
 * The longest output line passed on: the rest of a longer one is dropped as it arrives, so a
 * process printing without newlines cannot make the hub buffer its whole output.
 */
export const MAX_OUTPUT_LINE_CHARS = 64 * 1024;

/** Calls `onLine` with each line of `input` (LF or CRLF), each cut to `max` characters and marked when cut. */
export function eachLine(input: Readable, onLine: (line: string) => void, max = MAX_OUTPUT_LINE_CHARS): void {
  let pending = '';
  let cut = false;
  const emit = () => onLine(pending.endsWith('\r') ? pending.slice(0, -1) : pending);
  input.setEncoding('utf8');
  input.on('data', (chunk: string) => {
    for (let start = 0; ; ) {
      const end = chunk.indexOf('\n', start);
      if (!cut) {
        pending += chunk.slice(start, end === -1 ? undefined : end);
        if (pending.length > max) {
          onLine(`${pending.slice(0, max)}… [line cut at ${max} characters]`);
          pending = '';
          cut = true;
        }
      }
      if (end === -1) break;
      if (!cut) emit();
      pending = '';
      cut = false;
      start = end + 1;
    }
  });
  input.on('end', () => {
    if (pending !== '' && !cut) emit();
  });
}

/** How long a cancelled docker command gets to stop after SIGINT before SIGKILL. */
const CANCEL_GRACE_MS = 10_000;

/**
 * Runs `docker ARGS`, passing each output line to `onLine`; resolves with the exit code. On abort,
 * the whole process group (the CLI and its buildx plugin) gets SIGINT, then SIGKILL, and the
 * promise settles only once the process is gone, so a cancelled build cannot push afterwards.
 */
export function docker(args: string[], onLine: (line: string, stream: 'stdout' | 'stderr') => void, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const stopped = () =>
      (signal?.reason as Error | undefined)?.name === 'TimeoutError'
        ? buildFailed(`docker ${args.slice(0, 2).join(' ')} did not finish within ${QUICK_COMMAND_MS / 1000} s: is dockerd responsive?`)
        : buildCancelled();
    if (signal?.aborted) return reject(stopped());
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
    eachLine(child.stdout, (line) => onLine(line, 'stdout'));
    eachLine(child.stderr, (line) => onLine(line, 'stderr'));
    child.once('error', (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      if (err.code === 'ENOENT') reject(buildFailed('the docker CLI is not installed on the hub: install Docker Engine with the buildx plugin (on a test machine: bash scripts/rig/setup.sh)', err));
      else reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(stopped());
      else resolve(code ?? 1);
    });
  });
}

/** Runs docker and returns its stdout lines; a non-zero exit fails with the last lines of output. */
export async function dockerOrFail(args: string[], what: string, onLog: (line: string) => void, signal?: AbortSignal): Promise<string[]> {
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
  if (code !== 0) throw buildFailed(`${what} failed (exit ${code}): ${tail.join(' | ')}`);
  return stdout;
}

/** Removes a container whether it runs or not; one that is already gone (or a Docker that does not answer) is not an error. */
export async function removeContainer(name: string): Promise<void> {
  await docker(['rm', '--force', name], () => undefined, quick()).catch(() => 1);
}

/** Says which piece is missing (the docker CLI, the daemon, buildx, the registry) before a build starts. */
export async function checkBuildTools(registry: string, signal?: AbortSignal): Promise<void> {
  const quiet = () => undefined;
  if ((await docker(['version', '--format', '{{.Server.Version}}'], quiet, quick(signal))) !== 0) {
    throw buildFailed('the Docker daemon is not reachable from the hub (is dockerd running? on a test machine: bash scripts/rig/setup.sh)');
  }
  if ((await docker(['buildx', 'version'], quiet, quick(signal))) !== 0) {
    throw buildFailed('the docker buildx plugin is missing on the hub: install docker-buildx (Debian) or docker-buildx-plugin');
  }
  try {
    const res = await fetch(`http://${registry}/v2/`, { signal: AbortSignal.any([AbortSignal.timeout(5000), ...(signal ? [signal] : [])]) });
    await res.body?.cancel();
    // 401 is a registry that wants credentials: reachable, and docker's own login applies.
    if (res.status !== 200 && res.status !== 401) throw new Error(`GET /v2/ answered ${res.status}`);
  } catch (err) {
    if (signal?.aborted) throw buildCancelled();
    const inner = (err as { cause?: { code?: string; message?: string } }).cause;
    const cause = inner?.code ?? inner?.message ?? (err as Error).message;
    throw buildFailed(
      `the OCI registry at ${registry} is not reachable from the hub (${cause}): start one (Debian: docker-registry; on a test machine: bash scripts/rig/setup.sh) or point the hub at yours with --registry`,
      err,
    );
  }
}

