/**
 * What the agent needs from a container engine, apart from any engine: the reconciler, telemetry and
 * tests depend on this, and only the adapter (docker.ts) knows Docker. The same contract suite
 * (test/helpers/container-runtime-contract.ts) holds the adapter and the unit tests' fake to it.
 */
import type { DeviceFacts, ServiceLimits } from '../../shared/protocol.js';
import type { ContainerStats } from './container-stats.js';

export type { ContainerStats };

export type DockerFacts = NonNullable<DeviceFacts['docker']>;

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
  /** The limits the engine enforces now (null: none); absent when the engine could not say. */
  limits?: ContainerLimits;
}

/** The part of a service's limits the engine enforces, changeable on a running container (`update`). */
export type ContainerLimits = Pick<ServiceLimits, 'memoryBytes' | 'cpus'>;

export interface ContainerSpec {
  name: string;
  image: string;
  platform: string;
  service: string;
  revision: number;
  generation: number;
  port: number;
  limits: ServiceLimits;
  /** How long a graceful stop waits after SIGTERM: the runtime drains requests in flight first. */
  stopTimeoutSeconds: number;
}

export interface ContainerLogOptions {
  since?: number;
  tail?: number;
  follow: boolean;
  signal: AbortSignal;
}

export interface ContainerLogLine {
  /** ISO time the engine took the line. */
  ts: string;
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface PullProgress {
  /** Bytes downloaded so far and in total, over the layers the engine has announced. */
  current: number;
  total: number;
}

/**
 * Failures a caller acts on carry a stable code (`EdgemlError`, original error as `cause`):
 * `pull` rejects with AGENT_E_PULL_FAILED, `create` and `start` with AGENT_E_START_FAILED.
 */
export interface ContainerRuntime {
  /** Engine facts, or null when no engine answers (the agent still runs and reports that). */
  facts(): Promise<DockerFacts | null>;
  /** Containers this device's agent made, running or not. */
  list(deviceId: string): Promise<ManagedContainer[]>;
  /** The platforms an image reference offers, from its registry (nothing is downloaded). */
  platforms(image: string): Promise<string[]>;
  /** Compressed bytes of the image's layers for one platform, from its registry; null when unknown. */
  imageSize(image: string, platform: string): Promise<number | null>;
  /** Free bytes where the engine keeps images. */
  freeDiskBytes(): Promise<number>;
  hasImage(image: string, platform: string): Promise<boolean>;
  /** Fails when `signal` aborts, or when the engine reports no progress for the stall timeout. */
  pull(image: string, platform: string, onProgress: (p: PullProgress) => void, signal: AbortSignal): Promise<void>;
  /** Removes an image this agent pulled; false when a container still uses it. */
  removeImage(image: string): Promise<boolean>;
  create(deviceId: string, spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /**
   * Changes a container's memory and CPU limits in place: same id, still running. A null leaves that
   * limit as it is: Docker cannot lift a limit from a running container (0 means "unchanged" to
   * `docker update`, -1 is refused), so lifting one takes a new container. Rejects with
   * AGENT_E_START_FAILED (the engine refused a change to the container).
   */
  update(id: string, limits: ContainerLimits): Promise<void>;
  /** Running, and (once stopped) its exit code; null for a container that is not there. */
  state(id: string): Promise<{ running: boolean; exitCode: number } | null>;
  /** The last lines of its output, for a failure report. */
  tail(id: string, lines: number): Promise<string>;
  /**
   * Its output line by line, stdout and stderr apart: the last `tail` lines (all: absent) from
   * `since` (seconds since the epoch) on, then, with `follow`, new lines until `signal` aborts or
   * the container stops. Ends at once for a container that is not there.
   */
  logs(id: string, opts: ContainerLogOptions): AsyncIterable<ContainerLogLine>;
  /** CPU and memory now, for telemetry; takes about one engine sampling period (a second). */
  containerStats(id: string): Promise<ContainerStats>;
  /** Stops (SIGTERM, then SIGKILL after the container's stop timeout) and removes; a container already gone is no error. */
  remove(id: string): Promise<void>;
}
