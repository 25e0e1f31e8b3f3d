/**
 * What a simulated fleet is made of: how long its simulated container runtime takes, how often it
 * fails, how it retries and reconnects. Plain data plus per-device functions, checked once.
 */
import { isLoopbackHost } from '../../shared/address.js';
import { defaultBackoff, type BackoffPolicy } from '../../shared/backoff.js';
import type { Labels } from '../../shared/api/devices.js';
import { isValidDeviceId } from '../../shared/topics.js';

/** Milliseconds: a fixed number, or drawn uniformly (and reproducibly) from a range. */
export type DurationSpec = number | { min: number; max: number };

/** How long each simulated step of a rollout takes on a device. */
export interface Timing {
  /** The image download (skipped when the device still has the image, as the agent does). */
  pullMs: DurationSpec;
  /** Creating and starting the container. */
  startMs: DurationSpec;
  /** From start until `/health` answers 200 (or fails). */
  healthMs: DurationSpec;
}

/** Probabilities in [0, 1], decided once per device per revision (see `sticky`). */
export interface FailureRates {
  pull?: number;
  health?: number;
}

/** The rollout a timing or failure is drawn for. */
export interface RevisionContext {
  index: number;
  deviceId: string;
  service: string;
  revision: number;
  image: string;
}

/** A mistake in the simulation's setup: never mistaken for a simulated failure of a device. */
export class SimulatorConfigError extends Error {
  constructor(message: string) {
    super(`fleet simulator: ${message}`);
    this.name = 'SimulatorConfigError';
  }
}

export type PerRevision<T> = T | ((ctx: RevisionContext) => T);

export interface FleetHub {
  /** REST base, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Broker address, `HOST:PORT` or `mqtt://HOST:PORT`. */
  mqtt: string;
  adminKey: string;
}

export interface ConnectOptions {
  /** Devices connecting at the same moment while the fleet starts. */
  concurrency?: number;
  /** One attempt (TCP + CONNACK), as the agent's 10 s. */
  attemptTimeoutMs?: number;
  /** Connections lost or refused in a row after which a device gives up (state `gave-up`) until `goOnline()`. */
  maxAttempts?: number;
  backoff?: BackoffPolicy;
  /** `startFleet` fails if the whole fleet has not announced itself online by then. */
  readyTimeoutMs?: number;
}

export interface FleetOptions {
  hub: FleetHub;
  count: number;
  /** Device ids are `${idPrefix}-${index}`, the index zero-padded. */
  idPrefix: string;
  labels: (index: number) => Labels;
  /** OCI platform the device reports in its facts; default `linux/amd64`. */
  platform?: string | ((index: number) => string);
  timing: PerRevision<Timing>;
  failures?: PerRevision<FailureRates>;
  /**
   * true (default): a device chosen to fail a revision fails every attempt at it, like a bad image;
   * false: each attempt is drawn again, like a flaky registry.
   */
  stickyFailures?: boolean;
  seed?: number;
  /** Backoff between attempts at a failed revision (default: the agent's, as the agent's loop retries). */
  retry?: BackoffPolicy;
  /** Image size shown in pull progress. */
  pullBytes?: number;
  /** A pass (and so a report) also runs this often without news, as the agent's 30 s resync. */
  resyncMs?: number;
  /**
   * Every device is enrolled through `POST /api/v1/devices` with the admin key; `true` is the only
   * mode, since a device re-created without its target would miss its retained desired state
   * (the broker resumes its session and sends retained messages only on a new subscription).
   */
  enroll?: true;
  /** Enrollment requests in flight at once. */
  enrollConcurrency?: number;
  connect?: ConnectOptions;
}

export interface ResolvedOptions {
  hub: FleetHub;
  mqttUrl: string;
  count: number;
  idPrefix: string;
  labels: (index: number) => Labels;
  platform: (index: number) => string;
  timing: (ctx: RevisionContext) => Timing;
  failures: (ctx: RevisionContext) => FailureRates;
  stickyFailures: boolean;
  seed: number;
  retry: BackoffPolicy;
  pullBytes: number;
  resyncMs: number;
  enrollConcurrency: number;
  connect: Required<ConnectOptions>;
}

/** Bounds that keep a mistake in a benchmark from taking the machine down. */
const MAX_DEVICES = 20_000;

const perRevision = <T>(value: PerRevision<T>): ((ctx: RevisionContext) => T) =>
  typeof value === 'function' ? (value as (ctx: RevisionContext) => T) : () => value;

function loopbackUrl(what: string, url: URL): void {
  // URL keeps the brackets of an IPv6 host.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!isLoopbackHost(host)) throw new SimulatorConfigError(`${what} ${url.href} is not a loopback address; simulated traffic stays on this machine`);
}

function positiveInt(what: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new SimulatorConfigError(`${what} must be an integer from 1 to ${max}, not ${value}`);
  return value;
}

export function resolveOptions(o: FleetOptions): ResolvedOptions {
  const http = new URL(o.hub.url);
  const mqtt = new URL(o.hub.mqtt.includes('://') ? o.hub.mqtt : `mqtt://${o.hub.mqtt}`);
  loopbackUrl('hub url', http);
  loopbackUrl('hub mqtt', mqtt);
  if (mqtt.protocol !== 'mqtt:') throw new SimulatorConfigError(`hub mqtt must be mqtt://HOST:PORT, not ${o.hub.mqtt}`);
  const { platform } = o;
  return {
    hub: o.hub,
    mqttUrl: `mqtt://${mqtt.host}`,
    count: positiveInt('count', o.count, MAX_DEVICES),
    idPrefix: o.idPrefix,
    labels: o.labels,
    platform: typeof platform === 'function' ? platform : () => platform ?? 'linux/amd64',
    timing: perRevision(o.timing),
    failures: perRevision(o.failures ?? {}),
    stickyFailures: o.stickyFailures ?? true,
    seed: o.seed ?? 1,
    retry: o.retry ?? defaultBackoff,
    pullBytes: o.pullBytes ?? 64 * 1024 * 1024,
    resyncMs: o.resyncMs ?? 30_000,
    enrollConcurrency: positiveInt('enrollConcurrency', o.enrollConcurrency ?? 8, 256),
    connect: {
      concurrency: positiveInt('connect.concurrency', o.connect?.concurrency ?? 100, 10_000),
      attemptTimeoutMs: o.connect?.attemptTimeoutMs ?? 10_000,
      maxAttempts: positiveInt('connect.maxAttempts', o.connect?.maxAttempts ?? 10, 1000),
      backoff: o.connect?.backoff ?? { initialMs: 500, maxMs: 10_000, factor: 2 },
      readyTimeoutMs: o.connect?.readyTimeoutMs ?? 120_000,
    },
  };
}

/** Device ids sort in index order: the index is zero-padded to the width of the largest. */
export function deviceIds(prefix: string, count: number): string[] {
  const width = String(count - 1).length;
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(width, '0')}`);
  if (!ids.every(isValidDeviceId)) throw new SimulatorConfigError(`idPrefix ${JSON.stringify(prefix)} makes invalid device ids such as ${ids[0]}`);
  return ids;
}
