/**
 * The agent's view of the container engine. Only this folder talks to Docker. Every container the
 * agent makes carries labels naming its device, service, revision and port, so a restarted agent
 * finds exactly its own containers (several agents may share one engine in tests and demos).
 */
import { statfs } from 'node:fs/promises';
import Docker from 'dockerode';
import type { DeviceFacts, ServiceLimits } from '../../shared/protocol.js';

export type DockerFacts = NonNullable<DeviceFacts['docker']>;

export const LABELS = {
  device: 'io.edgeml.device',
  service: 'io.edgeml.service',
  revision: 'io.edgeml.revision',
  generation: 'io.edgeml.generation',
  port: 'io.edgeml.port',
  image: 'io.edgeml.image',
} as const;

export interface ManagedContainer {
  id: string;
  name: string;
  service: string;
  revision: number;
  image: string;
  port: number;
  running: boolean;
  /** Seconds since the epoch, for "the newest one wins" among duplicates. */
  created: number;
}

export interface ContainerSpec {
  name: string;
  image: string;
  platform: string;
  service: string;
  revision: number;
  generation: number;
  port: number;
  limits: ServiceLimits;
  /** How long `docker stop` waits after SIGTERM: the runtime drains requests in flight first. */
  stopTimeoutSeconds: number;
}

export interface PullProgress {
  /** Bytes downloaded so far and in total, over the layers the engine has announced. */
  current: number;
  total: number;
}

export interface ContainerRuntime {
  /** Engine facts, or null when no engine answers (the agent still runs and reports that). */
  facts(): Promise<DockerFacts | null>;
  /** Containers this device's agent made, running or not. */
  list(deviceId: string): Promise<ManagedContainer[]>;
  /** The platforms an image reference offers, from its registry (nothing is downloaded). */
  platforms(image: string): Promise<string[]>;
  /** Free bytes where the engine keeps images. */
  freeDiskBytes(): Promise<number>;
  hasImage(image: string, platform: string): Promise<boolean>;
  pull(image: string, platform: string, onProgress: (p: PullProgress) => void): Promise<void>;
  create(deviceId: string, spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** Running, and (once stopped) its exit code. */
  state(id: string): Promise<{ running: boolean; exitCode: number } | null>;
  /** The last lines of its output, for a failure report. */
  tail(id: string, lines: number): Promise<string>;
  /** Stops (SIGTERM, then SIGKILL after the container's stop timeout) and removes. */
  remove(id: string): Promise<void>;
}

// A wedged engine must not hold up the agent's `online` status.
const FACTS_TIMEOUT_MS = 3000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function platformOf(p: { os?: string; architecture?: string; variant?: string }): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

export function dockerRuntime(docker: Docker = new Docker()): ContainerRuntime {
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
      const found = await docker.listContainers({ all: true, filters: { label: [`${LABELS.device}=${deviceId}`] } });
      return found.map((c) => ({
        id: c.Id,
        name: (c.Names[0] ?? '').replace(/^\//, ''),
        service: c.Labels[LABELS.service] ?? '',
        revision: Number(c.Labels[LABELS.revision]),
        image: c.Labels[LABELS.image] ?? c.Image,
        port: Number(c.Labels[LABELS.port]),
        running: c.State === 'running',
        created: c.Created,
      }));
    },

    platforms: async (image) => {
      const info = (await docker.getImage(image).distribution()) as { Platforms?: Array<{ os?: string; architecture?: string; variant?: string }> };
      return (info.Platforms ?? []).map(platformOf);
    },

    freeDiskBytes: async () => {
      const info = (await docker.info()) as { DockerRootDir?: string };
      const stats = await statfs(info.DockerRootDir ?? '/var/lib/docker');
      return stats.bavail * stats.bsize;
    },

    hasImage: async (image, platform) => {
      try {
        const inspected = (await docker.getImage(image).inspect()) as { Os?: string; Architecture?: string; Variant?: string };
        // With the containerd store an index digest is "present" once any platform is: check ours.
        return platformOf({ os: inspected.Os, architecture: inspected.Architecture, variant: inspected.Variant }) === platform;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },

    pull: async (image, platform, onProgress) => {
      const stream = await docker.pull(image, { platform });
      const layers = new Map<string, PullProgress>();
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: { id?: string; error?: string; progressDetail?: { current?: number; total?: number } }) => {
            if (event.error) return;
            if (event.id && event.progressDetail?.total) {
              layers.set(event.id, { current: event.progressDetail.current ?? 0, total: event.progressDetail.total });
              let current = 0;
              let total = 0;
              for (const l of layers.values()) {
                current += l.current;
                total += l.total;
              }
              onProgress({ current, total });
            }
          },
        );
      });
    },

    create: async (deviceId, spec) => {
      const container = await docker.createContainer({
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
            ...(spec.limits.memoryBytes === null ? {} : { Memory: spec.limits.memoryBytes }),
            ...(spec.limits.cpus === null ? {} : { NanoCpus: Math.round(spec.limits.cpus * 1e9) }),
          },
        },
      } as unknown as Docker.ContainerCreateOptions);
      return container.id;
    },

    start: async (id) => {
      await docker.getContainer(id).start();
    },

    state: async (id) => {
      try {
        const info = await docker.getContainer(id).inspect();
        return { running: info.State.Running, exitCode: info.State.ExitCode };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },

    tail: async (id, lines) => {
      try {
        const buf = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines })) as unknown as Buffer;
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

    remove: async (id) => {
      try {
        await docker.getContainer(id).stop();
      } catch (err) {
        // Already stopped (304) or gone (404): removal below settles it.
        if (!isNotFound(err) && (err as { statusCode?: number }).statusCode !== 304) throw err;
      }
      try {
        await docker.getContainer(id).remove({ force: true });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}
