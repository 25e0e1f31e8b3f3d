/**
 * The ContainerRuntime (container-runtime.ts) over Docker through dockerode: the one module that
 * talks to Docker. Every container the agent makes carries labels naming its device, service,
 * revision and port, so a restarted agent finds exactly its own containers (several agents may
 * share one engine in tests and demos).
 */
import { statfs } from 'node:fs/promises';
import Docker from 'dockerode';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import { containerStatsOf, type EngineStats } from './container-stats.js';
import type { ContainerLimits, ContainerLogLine, ContainerLogOptions, ContainerRuntime, ManagedContainer, PullProgress } from './container-runtime.js';
import { LogDemuxer } from './log-demux.js';
import { imageSizeFromRegistry, platformOf } from './image-size.js';

export const LABELS = {
  device: 'io.edgeml.device',
  service: 'io.edgeml.service',
  revision: 'io.edgeml.revision',
  generation: 'io.edgeml.generation',
  port: 'io.edgeml.port',
  image: 'io.edgeml.image',
} as const;

// A wedged engine must not hold up the agent's `online` status.
const FACTS_TIMEOUT_MS = 3000;
/** A wedged engine must not hold up the reconcile loop either: every call has a deadline. */
const CALL_TIMEOUT_MS = 30_000;
/** `docker stop` waits for the container's stop timeout (35 s: the runtime drains requests) first. */
const STOP_TIMEOUT_MS = 90_000;
/** Stats wait for the engine's second sample (about a second); telemetry must not wait on a wedged engine. */
const STATS_TIMEOUT_MS = 10_000;
/** A pull whose engine reports nothing for this long is stalled (a registry that stopped sending). */
export const DEFAULT_PULL_STALL_MS = 120_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the engine gave no answer in ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The engine's own error stays as `cause`; the code is what the reconciler acts on. */
async function coded<T>(code: ErrorCode, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new EdgemlError(code, (err as Error).message, { cause: err });
  }
}

/**
 * Memory and CPU as the engine takes them. MemorySwap is set to the memory: left out, Docker allows
 * swap of twice the memory and then refuses to raise the memory past that, so an update could
 * only ever lower it. A null is left out (on create: no limit; on update: unchanged).
 */
function engineLimits(limits: ContainerLimits): { Memory?: number; MemorySwap?: number; NanoCpus?: number } {
  return {
    ...(limits.memoryBytes === null ? {} : { Memory: limits.memoryBytes, MemorySwap: limits.memoryBytes }),
    ...(limits.cpus === null ? {} : { NanoCpus: Math.round(limits.cpus * 1e9) }),
  };
}

/** What the engine enforces; 0 is Docker's "no limit". */
function limitsOf(host: { Memory?: number; NanoCpus?: number }): ContainerLimits {
  return { memoryBytes: host.Memory ? host.Memory : null, cpus: host.NanoCpus ? host.NanoCpus / 1e9 : null };
}

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

export interface DockerRuntimeOptions {
  docker?: Docker;
  pullStallMs?: number;
  imageSize?: (image: string, platform: string) => Promise<number | null>;
}

export function dockerRuntime(o: DockerRuntimeOptions = {}): ContainerRuntime {
  const docker = o.docker ?? new Docker();
  const pullStallMs = o.pullStallMs ?? DEFAULT_PULL_STALL_MS;
  const call = <T>(promise: Promise<T>, ms = CALL_TIMEOUT_MS) => withTimeout(promise, ms);
  return {
    facts: async () => {
      try {
        const v = await withTimeout(docker.version(), FACTS_TIMEOUT_MS);
        return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
      } catch {
        return null;
      }
    },

    list: async (deviceId) => {
      const found = await call(docker.listContainers({ all: true, filters: { label: [`${LABELS.device}=${deviceId}`] } }));
      // The list does not carry limits: one inspect each (a device runs a handful of containers).
      return Promise.all(
        found.map(async (c): Promise<ManagedContainer> => {
          const host = await call(docker.getContainer(c.Id).inspect()).then((i) => i.HostConfig as { Memory?: number; NanoCpus?: number }, () => null);
          return {
            id: c.Id,
            name: (c.Names[0] ?? '').replace(/^\//, ''),
            service: c.Labels[LABELS.service] ?? '',
            revision: Number(c.Labels[LABELS.revision]),
            image: c.Labels[LABELS.image] ?? c.Image,
            port: Number(c.Labels[LABELS.port]),
            running: c.State === 'running',
            created: c.Created,
            ...(host ? { limits: limitsOf(host) } : {}),
          };
        }),
      );
    },

    platforms: async (image) => {
      const info = (await call(docker.getImage(image).distribution())) as { Platforms?: Array<{ os?: string; architecture?: string; variant?: string }> };
      return (info.Platforms ?? []).map(platformOf);
    },

    imageSize: o.imageSize ?? imageSizeFromRegistry,

    freeDiskBytes: async () => {
      const info = (await call(docker.info())) as { DockerRootDir?: string };
      const stats = await statfs(info.DockerRootDir ?? '/var/lib/docker');
      return stats.bavail * stats.bsize;
    },

    hasImage: async (image, platform) => {
      try {
        const inspected = (await call(docker.getImage(image).inspect())) as { Os?: string; Architecture?: string; Variant?: string };
        // With the containerd store an index digest is "present" once any platform is: check ours.
        return platformOf({ os: inspected.Os, architecture: inspected.Architecture, variant: inspected.Variant }) === platform;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },

    pull: (image, platform, onProgress, signal) => coded(ErrorCodes.AGENT_PULL_FAILED, async () => {
      signal.throwIfAborted();
      const stream = (await call(docker.pull(image, { platform, abortSignal: signal }))) as NodeJS.ReadableStream & { destroy(err?: Error): void };
      const layers = new Map<string, PullProgress & { status: string }>();
      // Progress, not events: the containerd store repeats "Downloading" every 100 ms with no bytes.
      let lastProgress = Date.now();
      let streamError: Error | null = null;
      const stop = (err: Error) => stream.destroy(err);
      const onAbort = () => stop(signal.reason instanceof Error ? signal.reason : new Error('the pull was cancelled'));
      signal.addEventListener('abort', onAbort, { once: true });
      const watchdog = setInterval(() => {
        if (Date.now() - lastProgress > pullStallMs) stop(new Error(`no progress for ${Math.round(pullStallMs / 1000)} s`));
      }, Math.min(5000, pullStallMs));
      try {
        await new Promise<void>((resolve, reject) => {
          stream.once('error', reject);
          docker.modem.followProgress(
            stream,
            // The engine reports a failed pull (unknown manifest, no space left) inside the stream.
            (err: Error | null) => {
              const failed = err ?? streamError;
              if (failed) reject(failed);
              else resolve();
            },
            (event: { id?: string; status?: string; error?: string; progressDetail?: { current?: number; total?: number } }) => {
              if (event.error) {
                streamError ??= new Error(event.error);
                return;
              }
              if (!event.id) return;
              const before = layers.get(event.id);
              const next = { current: event.progressDetail?.current ?? before?.current ?? 0, total: event.progressDetail?.total ?? before?.total ?? 0, status: event.status ?? '' };
              if (!before || next.current > before.current || next.status !== before.status) lastProgress = Date.now();
              layers.set(event.id, next);
              let current = 0;
              let total = 0;
              for (const l of layers.values()) {
                current += l.current;
                total += l.total;
              }
              if (total > 0) onProgress({ current, total });
            },
          );
        });
      } finally {
        clearInterval(watchdog);
        signal.removeEventListener('abort', onAbort);
      }
    }),

    removeImage: async (image) => {
      try {
        await call(docker.getImage(image).remove());
        return true;
      } catch (err) {
        if (isNotFound(err)) return true;
        // 409: a container (maybe another device's, on a shared engine) still uses it.
        if ((err as { statusCode?: number }).statusCode === 409) return false;
        throw err;
      }
    },

    create: (deviceId, spec) => coded(ErrorCodes.AGENT_START_FAILED, async () => {
      const container = await call(docker.createContainer({
        _query: { name: spec.name, platform: spec.platform },
        _body: {
          Image: spec.image,
          Env: ['HOST=127.0.0.1', `PORT=${spec.port}`],
          Labels: {
            [LABELS.device]: deviceId,
            [LABELS.service]: spec.service,
            [LABELS.revision]: String(spec.revision),
            [LABELS.generation]: String(spec.generation),
            [LABELS.port]: String(spec.port),
            [LABELS.image]: spec.image,
          },
          StopTimeout: spec.stopTimeoutSeconds,
          HostConfig: {
            NetworkMode: 'host',
            RestartPolicy: { Name: 'unless-stopped' },
            ...engineLimits(spec.limits),
          },
        },
      } as unknown as Docker.ContainerCreateOptions));
      return container.id;
    }),

    start: (id) => coded(ErrorCodes.AGENT_START_FAILED, async () => {
      await call(docker.getContainer(id).start());
    }),

    update: (id, limits) => coded(ErrorCodes.AGENT_START_FAILED, async () => {
      const changes = engineLimits(limits);
      if (Object.keys(changes).length > 0) await call(docker.getContainer(id).update(changes));
    }),

    state: async (id) => {
      try {
        const info = await call(docker.getContainer(id).inspect());
        return { running: info.State.Running, exitCode: info.State.ExitCode };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },

    tail: async (id, lines) => {
      try {
        const buf = (await call(docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines }))) as unknown as Buffer;
        // Multiplexed frames: an 8-byte header before each chunk.
        const out: string[] = [];
        for (let i = 0; i + 8 <= buf.length; ) {
          const size = buf.readUInt32BE(i + 4);
          out.push(buf.subarray(i + 8, i + 8 + size).toString('utf8'));
          i += 8 + size;
        }
        return out.join('');
      } catch {
        return '';
      }
    },

    logs: (id, opts) => containerLogs(docker, id, opts),

    containerStats: async (id) => {
      // stream=false without one-shot: the engine waits for a second sample, so precpu_stats gives a CPU delta.
      const stats = await call(docker.getContainer(id).stats({ stream: false }), STATS_TIMEOUT_MS);
      return containerStatsOf(stats as unknown as EngineStats);
    },

    remove: async (id) => {
      try {
        await call(docker.getContainer(id).stop(), STOP_TIMEOUT_MS);
      } catch (err) {
        // Already stopped (304) or gone (404): removal below settles it.
        if (!isNotFound(err) && (err as { statusCode?: number }).statusCode !== 304) throw err;
      }
      try {
        await call(docker.getContainer(id).remove({ force: true }));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}

/** `docker logs` as lines, streamed (with or without follow); a container that is gone (or an engine that fails) ends the lines. */
async function* containerLogs(docker: Docker, id: string, opts: ContainerLogOptions): AsyncGenerator<ContainerLogLine> {
  const demux = new LogDemuxer();
  const query = { stdout: true, stderr: true, timestamps: true, follow: opts.follow, ...(opts.since === undefined ? {} : { since: opts.since }), ...(opts.tail === undefined ? {} : { tail: opts.tail }) };
  const opening = openLogs(docker, id, query, opts.signal);
  let stream: NodeJS.ReadableStream & { destroy(): void };
  try {
    stream = await withTimeout(opening, CALL_TIMEOUT_MS);
  } catch (err) {
    // An answer that comes after the deadline is not read: its connection must not stay open.
    opening.then((late) => late.destroy(), () => undefined);
    if (isNotFound(err) || opts.signal.aborted) return;
    throw err;
  }
  // The signal aborts the request (and so the stream): a follow ends from our side.
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) yield* demux.push(chunk);
  } catch (err) {
    if (!opts.signal.aborted) throw err;
  } finally {
    stream.destroy();
  }
  yield* demux.end();
}

/**
 * The engine's log stream. Dialled directly: dockerode's container.logs() streams only with follow and
 * reads a container's whole history into one Buffer otherwise.
 */
function openLogs(docker: Docker, id: string, query: Record<string, unknown>, signal: AbortSignal): Promise<NodeJS.ReadableStream & { destroy(): void }> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      { path: `/containers/${id}/logs?`, method: 'GET', isStream: true, abortSignal: signal, statusCodes: { 200: true, 404: 'no such container', 500: 'server error' }, options: query },
      (err, data) => (err ? reject(err) : resolve(data as NodeJS.ReadableStream & { destroy(): void })),
    );
  });
}
