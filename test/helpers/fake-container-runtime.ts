/**
 * Docker, faked in memory for unit tests: the one stateful fake of `ContainerRuntime`, held to the
 * same contract suite as the dockerode adapter (test/helpers/container-runtime-contract.ts). Images
 * come from a fake registry (`publish`), containers keep their spec and state, and nothing listens on
 * a socket: the fake health probe and port allocator below answer for the "containers". What it does
 * not implement throws, so a test that starts to rely on it fails loudly instead of passing on a stub.
 */
import type { HealthProbe } from '../../agent/reconcile/health-probe.js';
import type { PortAllocator } from '../../agent/reconcile/free-port.js';
import type { ContainerLimits, ContainerLogLine, ContainerLogOptions, ContainerRuntime, ContainerSpec, ContainerStats, ManagedContainer, PullProgress } from '../../agent/runtime/container-runtime.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

export interface PublishedImage {
  platforms: string[];
  /** Compressed bytes, as a registry reports them; null when it does not. */
  size: number | null;
  /** Its containers exit at once with this code instead of running. */
  exitCode: number | null;
}

interface FakeContainer extends ManagedContainer {
  limits: ContainerLimits;
  device: string;
  spec: ContainerSpec;
  exitCode: number;
}

export class FakeContainerRuntime implements ContainerRuntime {
  readonly registry = new Map<string, PublishedImage>();
  readonly containers = new Map<string, FakeContainer>();
  /** Images on the "disk". */
  readonly local = new Set<string>();
  readonly pulled: string[] = [];
  readonly removedImages: string[] = [];
  /** Containers `update` changed, in order. */
  readonly updates: string[] = [];
  free = 10 * 2 ** 30;
  /** Pulls of these images wait until released (`held`) or aborted. */
  readonly holdPulls = new Set<string>();
  readonly held = new Map<string, () => void>();
  #seq = 0;
  /** Each container's output so far (`write` adds to it); followers are woken by `write` and `remove`. */
  readonly output = new Map<string, ContainerLogLine[]>();
  #outputWaiters = new Set<() => void>();

  constructor(private readonly defaultPlatform = 'linux/amd64') {}

  /** Puts an image in the fake registry, or changes what it says about one. */
  publish(image: string, o: Partial<PublishedImage> = {}): void {
    const before = this.registry.get(image) ?? { platforms: [this.defaultPlatform], size: null, exitCode: null };
    this.registry.set(image, { ...before, ...o });
  }

  running(): ManagedContainer[] {
    return this.managed().filter((c) => c.running);
  }

  async facts(): Promise<never> {
    throw new Error('FakeContainerRuntime does not implement facts()');
  }

  async list(deviceId: string): Promise<ManagedContainer[]> {
    return this.managed().filter((c) => this.containers.get(c.id)?.device === deviceId);
  }

  async platforms(image: string): Promise<string[]> {
    return this.published(image).platforms;
  }

  async imageSize(image: string): Promise<number | null> {
    return this.registry.get(image)?.size ?? null;
  }

  async freeDiskBytes(): Promise<number> {
    return this.free;
  }

  async hasImage(image: string): Promise<boolean> {
    return this.local.has(image);
  }

  async pull(image: string, platform: string, onProgress: (p: PullProgress) => void, signal: AbortSignal): Promise<void> {
    try {
      signal.throwIfAborted();
      const published = this.published(image);
      if (!published.platforms.includes(platform)) throw new Error(`no ${platform} variant of ${image}`);
      this.pulled.push(image);
      if (this.holdPulls.has(image)) {
        await new Promise<void>((resolve, reject) => {
          this.held.set(image, resolve);
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        });
      }
    } catch (err) {
      throw new EdgemlError(ErrorCodes.AGENT_PULL_FAILED, (err as Error).message, { cause: err });
    }
    onProgress({ current: 1, total: 1 });
    this.local.add(image);
  }

  async removeImage(image: string): Promise<boolean> {
    if ([...this.containers.values()].some((c) => c.image === image)) return false;
    if (this.local.delete(image)) this.removedImages.push(image);
    return true;
  }

  async create(deviceId: string, spec: ContainerSpec): Promise<string> {
    if (!this.local.has(spec.image)) throw new EdgemlError(ErrorCodes.AGENT_START_FAILED, `no such image: ${spec.image}`);
    if ([...this.containers.values()].some((c) => c.name === spec.name)) throw new EdgemlError(ErrorCodes.AGENT_START_FAILED, `the name ${spec.name} is already in use`);
    const id = `c${++this.#seq}`;
    const { name, service, revision, image, port } = spec;
    const limits = { memoryBytes: spec.limits.memoryBytes, cpus: spec.limits.cpus };
    this.containers.set(id, { id, name, service, revision, image, port, running: false, created: this.#seq, limits, device: deviceId, spec, exitCode: 0 });
    return id;
  }

  /** As Docker: a null leaves that limit as it is. */
  async update(id: string, limits: ContainerLimits): Promise<void> {
    const c = this.containers.get(id);
    if (!c) throw new EdgemlError(ErrorCodes.AGENT_START_FAILED, `no such container: ${id}`);
    this.updates.push(id);
    c.limits = { memoryBytes: limits.memoryBytes ?? c.limits.memoryBytes, cpus: limits.cpus ?? c.limits.cpus };
  }

  /** As `docker kill`: the container stops; the agent is not told. */
  kill(id: string): void {
    const c = this.containers.get(id);
    if (c) Object.assign(c, { running: false, exitCode: 137 });
  }

  async start(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (!c) throw new EdgemlError(ErrorCodes.AGENT_START_FAILED, `no such container: ${id}`);
    const exitCode = this.registry.get(c.image)?.exitCode ?? null;
    c.running = exitCode === null;
    c.exitCode = exitCode ?? 0;
  }

  async state(id: string): Promise<{ running: boolean; exitCode: number } | null> {
    const c = this.containers.get(id);
    return c ? { running: c.running, exitCode: c.exitCode } : null;
  }

  async tail(): Promise<string> {
    return '';
  }

  async containerStats(id: string): Promise<ContainerStats> {
    const c = this.containers.get(id);
    if (!c) throw new Error(`no such container: ${id}`);
    return { cpuPercent: null, memoryBytes: null, memoryLimitBytes: c.limits.memoryBytes };
  }

  async remove(id: string): Promise<void> {
    this.containers.delete(id);
    this.#wakeFollowers();
  }

  /** What a container writes: a line on one of its streams, now. */
  write(id: string, line: Omit<ContainerLogLine, 'ts'> & { ts?: string }): void {
    if (!this.containers.has(id)) throw new Error(`no such container: ${id}`);
    const lines = this.output.get(id) ?? [];
    lines.push({ ts: line.ts ?? new Date().toISOString(), stream: line.stream, line: line.line });
    this.output.set(id, lines);
    this.#wakeFollowers();
  }

  async *logs(id: string, opts: ContainerLogOptions): AsyncGenerator<ContainerLogLine> {
    if (!this.containers.has(id)) return;
    const all = this.output.get(id) ?? [];
    const since = opts.since === undefined ? all : all.filter((l) => Date.parse(l.ts) / 1000 >= opts.since!);
    const first = opts.tail === undefined ? since : since.slice(Math.max(0, since.length - opts.tail));
    yield* first;
    let seen = all.length;
    while (opts.follow && !opts.signal.aborted && this.containers.has(id)) {
      const now = this.output.get(id) ?? [];
      if (now.length > seen) {
        const fresh = now.slice(seen);
        seen = now.length;
        yield* fresh;
        continue;
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#outputWaiters.delete(wake);
          opts.signal.removeEventListener('abort', wake);
          resolve();
        };
        this.#outputWaiters.add(wake);
        opts.signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  #wakeFollowers(): void {
    for (const wake of [...this.#outputWaiters]) wake();
  }

  private managed(): ManagedContainer[] {
    return [...this.containers.values()].map(({ device: _d, spec: _s, exitCode: _e, ...c }) => ({ ...c, limits: { ...c.limits } }));
  }

  private published(image: string): PublishedImage {
    const published = this.registry.get(image);
    if (!published) throw new Error(`manifest unknown: ${image} is not in the registry`);
    return published;
  }
}

/** The health probe over the fake: a running container on the port is ready unless its image is `unhealthy`. */
export function fakeHealthProbe(runtime: FakeContainerRuntime): HealthProbe & { unhealthy: Set<string> } {
  const unhealthy = new Set<string>();
  return {
    unhealthy,
    probe: async (port) => {
      const c = runtime.running().find((r) => r.port === port);
      return c && !unhealthy.has(c.image) ? { healthy: true } : { healthy: false, failed: null };
    },
  };
}

/** Ports handed out in order: the fake listens on none of them. */
export function fakePorts(first = 40_000): PortAllocator {
  let next = first;
  return { next: async () => next++ };
}
