/**
 * The hub's devices: enrollment (a token shown once, stored as a hash), labels and revocation are
 * durable writes; what devices say about themselves (status, facts, last seen, the reported state of
 * their services) is applied in memory at once and saved in batches, because a fleet reconnecting
 * after a hub restart, or reporting every step of a rollout, would otherwise rewrite the store once
 * per message. Devices re-announce their status and state on every connect, so a crash between
 * batches loses nothing that does not come back (but the last few seconds of `lastSeen`). A token rotation leaves the old token valid for a
 * grace; when it ends, listeners hear `token-expired` so connections made with it can be dropped.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  matchesLabels,
  MAX_LABELS,
  type Device,
  type DeviceEnroll,
  type DeviceEnrolled,
  type DeviceLabelsUpdate,
  type DeviceStatus,
  type DeviceTokenRotated,
  type Labels,
} from '../../shared/api/devices.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { PROTOCOL_VERSION, type ReplicaCounts, type ReportedState, type StatusMessage } from '../../shared/protocol.js';
import { hashSecret, newSecret } from '../../shared/secrets.js';
import { graceEnd, livePrevious, matchesCurrentOrPrevious, previousAfterRotation, recordRotation, rotationMadeBy, rotationViews } from '../auth/secret-rotation.js';
import type { StoredProblems } from '../store/problems.js';
import type { ActorRecord, DeviceObservation, DeviceRecord, DeviceRepository } from '../store/store.js';
import { checkStoredDevice, emptyObservation } from './device-record-check.js';

/** How long observations may wait in memory before they are written. */
export const OBSERVATION_FLUSH_MS = 2000;
/**
 * A device's `lastSeen` moves with every message it sends, in memory (what views show); the store
 * gets it at most this often per device, so a crash loses at most this much (plus a flush period).
 */
export const LAST_SEEN_WRITE_MS = 10_000;
/** Tokens carry a prefix so secret scanners and people can tell them from API keys. */
const TOKEN_PREFIX = 'emd_';

/** One service's replica counts on one device, as the device last reported them (`/metrics`). */
export interface ServiceReplicaGauge {
  device: string;
  service: string;
  desired: number;
  ready: number;
}

/**
 * What an operator changed about a device (not what the device reported). `token-expired`: a token
 * a rotation replaced stopped working (its grace ended, or it had none).
 */
export type DeviceChange = 'enrolled' | 'labels' | 'revoked' | 'token-expired';

function notFound(id: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_DEVICE_NOT_FOUND, `device ${id} not found`, { httpStatus: 404 });
}

export function deviceView(record: DeviceRecord, desiredGeneration: number | null): Device {
  // Certificates are left out: the issuer writes them to the store, so the copy here is stale (DeviceRepository.get).
  const { tokenHash: _hash, previousTokens: _previous, certificates: _certificates, rotations, observed, ...rest } = record;
  const reported = observed.reported;
  const status: DeviceStatus = record.revokedAt ? 'revoked' : (observed.status ?? 'never-connected');
  return {
    ...structuredClone(rest),
    status,
    offlineReason: observed.offlineReason,
    onlineSince: observed.onlineSince,
    lastSeen: observed.lastSeen,
    facts: structuredClone(observed.facts),
    gateway: observed.gateway ?? null,
    desiredGeneration,
    observedGeneration: reported?.observedGeneration ?? null,
    phase: reported?.phase ?? null,
    services: structuredClone(reported?.services ?? []),
    rotations: rotationViews(rotations),
  };
}

/** A report without its pull progress: what is worth a store write. */
function lasting(r: ReportedState): unknown {
  return { ...r, services: r.services.map(({ progress: _progress, ...s }) => s) };
}

export class DeviceDirectory {
  readonly #devices = new Map<string, DeviceRecord>();
  readonly #dirty = new Set<string>();
  #desiredGeneration: (id: string) => number | null = () => null;
  #flushTimer: unknown = null;
  #flushing: Promise<void> = Promise.resolve();
  #changeListeners: Array<(id: string, change: DeviceChange) => void> = [];
  /** Per device, when a `lastSeen` alone last asked for a store write. */
  readonly #lastSeenMarked = new Map<string, number>();
  /** Per device, the timer of the next end of a replaced token's grace. */
  readonly #expiryTimers = new Map<string, unknown>();

  private constructor(
    private readonly repo: DeviceRepository,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** A stored device that no longer validates is reported and left out (device-record-check.ts); the rest load. */
  static async load(repo: DeviceRepository, clock: Clock, logger: Logger, problems: Pick<StoredProblems, 'report'>): Promise<DeviceDirectory> {
    const directory = new DeviceDirectory(repo, clock, logger);
    for (const stored of await repo.list()) {
      const checked = checkStoredDevice(stored);
      if (!checked.ok) {
        problems.report('device', typeof stored?.id === 'string' ? stored.id : '(no id)', `the stored device record is damaged, so the device cannot connect: ${checked.error}`);
        continue;
      }
      const { record } = checked;
      if (checked.observationReset) logger.warn({ deviceId: record.id, reason: checked.observationReset }, 'stored observation of a device is damaged: cleared until it reports again');
      // Nobody is connected to a hub that is just starting: whatever was online is now unknown.
      if (record.observed.status === 'online') record.observed = { ...record.observed, status: 'offline', offlineReason: 'lost', onlineSince: null };
      directory.#devices.set(record.id, record);
      directory.armTokenExpiry(record.id);
    }
    return directory;
  }

  private view(record: DeviceRecord): Device {
    return deviceView(record, this.#desiredGeneration(record.id));
  }

  /** Where device views read the generation the hub last asked for (the desired states live elsewhere). */
  readDesiredGenerationFrom(lookup: (id: string) => number | null): void {
    this.#desiredGeneration = lookup;
  }

  /** A reported state from the device's own topic; only the newest of a flush period is written. */
  applyReported(id: string, reported: ReportedState): void {
    const record = this.#devices.get(id);
    if (!record) return;
    const before = record.observed.reported;
    record.observed = { ...record.observed, reported };
    // Pull progress comes every second during a rollout: only what a restarted hub needs is written.
    if (!before || !isDeepStrictEqual(lasting(before), lasting(reported))) this.markDirty(id);
  }

  private now(): string {
    return new Date(this.clock.now()).toISOString();
  }

  private record(id: string): DeviceRecord {
    const record = this.#devices.get(id);
    if (!record) throw notFound(id);
    return record;
  }

  /** `secret` is random unless a retryable enrollment derived it (hub/http/idempotency.ts). */
  async enroll(request: DeviceEnroll, actor: ActorRecord, tokenSecret = newSecret()): Promise<DeviceEnrolled> {
    const secret = `${TOKEN_PREFIX}${tokenSecret}`;
    const record = await this.repo.add({
      id: request.id,
      labels: request.labels ?? {},
      tokenHash: hashSecret(secret),
      enrolledAt: this.now(),
      enrolledBy: actor,
      revokedAt: null,
      observed: emptyObservation(),
    });
    this.#devices.set(record.id, record);
    this.changed(record.id, 'enrolled');
    return { ...this.view(record), token: secret };
  }

  /** The enrollment `made` marks, answered again with its (derived) token. */
  enrolledBy(made: (actor: ActorRecord) => boolean, tokenSecret: string): { by: ActorRecord; enrolled: DeviceEnrolled } | undefined {
    const record = [...this.#devices.values()].find((r) => made(r.enrolledBy));
    return record && { by: record.enrolledBy, enrolled: { ...this.view(record), token: `${TOKEN_PREFIX}${tokenSecret}` } };
  }

  /** Enrolled and not revoked: the broker asks again on every publish, subscription and delivery. */
  isActive(id: string): boolean {
    const record = this.#devices.get(id);
    return record !== undefined && record.revokedAt === null;
  }

  /** Whether `token` is this device's (current, or replaced and within its grace) and the device may connect. */
  verifyToken(id: string, token: string): boolean {
    const record = this.#devices.get(id);
    return matchesCurrentOrPrevious(record?.tokenHash, record?.previousTokens, token, this.clock.now()) && this.isActive(id);
  }

  tokenHashValid(id: string, tokenHash: string): boolean {
    const record = this.#devices.get(id);
    if (record === undefined || !this.isActive(id)) return false;
    return record.tokenHash === tokenHash || livePrevious(record.previousTokens, this.clock.now()).some((p) => p.hash === tokenHash);
  }

  /**
   * A new token (shown once); the old one keeps working until the grace ends, then `token-expired`.
   * A revoked device stays revoked: 409. `tokenSecret` is random unless a retryable rotation derived it.
   */
  async rotateToken(id: string, grace: string, actor: ActorRecord, tokenSecret = newSecret()): Promise<DeviceTokenRotated> {
    const current = this.record(id);
    const now = this.clock.now();
    const until = graceEnd(grace, now);
    const token = `${TOKEN_PREFIX}${tokenSecret}`;
    let ended = false;
    const stored = await this.repo.update(id, (r) => {
      if (r.revokedAt) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `device ${id} is revoked: a revoked device's token cannot be rotated`, { httpStatus: 409 });
      const rotated = previousAfterRotation(r.previousTokens, r.tokenHash, until, now);
      ended = rotated.ended;
      r.previousTokens = rotated.previous;
      r.tokenHash = hashSecret(token);
      r.rotations = recordRotation(r.rotations, { at: new Date(now).toISOString(), by: actor, previousValidUntil: until }, now);
    });
    this.adoptSecrets(current, stored);
    if (ended) this.changed(id, 'token-expired');
    this.armTokenExpiry(id);
    return { ...this.view(current), token, previousValidUntil: until };
  }

  /** The rotation `made` marks, answered again with its (derived) token. */
  rotatedBy(made: (actor: ActorRecord) => boolean, tokenSecret: string): { by: ActorRecord; rotated: DeviceTokenRotated } | undefined {
    for (const record of this.#devices.values()) {
      const rotation = rotationMadeBy(record.rotations, made);
      if (rotation) return { by: rotation.by, rotated: { ...this.view(record), token: `${TOKEN_PREFIX}${tokenSecret}`, previousValidUntil: rotation.previousValidUntil } };
    }
    return undefined;
  }

  /** The stored token fields, not the observation: the one in memory is newer than the store's. */
  private adoptSecrets(current: DeviceRecord, stored: DeviceRecord): void {
    current.tokenHash = stored.tokenHash;
    current.previousTokens = stored.previousTokens;
    current.rotations = stored.rotations;
  }

  /** Arms the device's timer for the next end of a grace (also ones that ended while the hub was down). */
  private armTokenExpiry(id: string): void {
    const pending = this.#expiryTimers.get(id);
    if (pending !== undefined) this.clock.clearTimeout(pending);
    this.#expiryTimers.delete(id);
    const ends = (this.#devices.get(id)?.previousTokens ?? []).map((p) => Date.parse(p.validUntil));
    if (ends.length === 0) return;
    const handle = this.clock.setTimeout(() => {
      this.#expiryTimers.delete(id);
      void this.expireTokens(id);
    }, Math.max(0, Math.min(...ends) - this.clock.now()));
    // A pending grace must not keep a stopping hub alive.
    (handle as { unref?: () => void } | undefined)?.unref?.();
    this.#expiryTimers.set(id, handle);
  }

  /** Drops the replaced tokens whose grace ended from the store, tells the listeners, and waits for the next end. */
  private async expireTokens(id: string): Promise<void> {
    const current = this.#devices.get(id);
    if (!current) return;
    const now = this.clock.now();
    const live = livePrevious(current.previousTokens, now);
    // A timer that fires a little early finds nothing ended yet and waits again.
    if (live.length < (current.previousTokens ?? []).length) {
      try {
        this.adoptSecrets(current, await this.repo.update(id, (r) => void (r.previousTokens = livePrevious(r.previousTokens, now))));
      } catch (err) {
        // verifyToken already refuses them by their time; the next write drops them.
        this.logger.error({ err, deviceId: id }, 'cannot drop expired device tokens from the store');
        current.previousTokens = live;
      }
      if (!current.revokedAt) {
        this.logger.info({ deviceId: id }, 'a replaced device token expired');
        this.changed(id, 'token-expired');
      }
    }
    this.armTokenExpiry(id);
  }

  async updateLabels(id: string, update: DeviceLabelsUpdate): Promise<Device> {
    const current = this.record(id);
    const labels: Labels = { ...current.labels, ...update.set };
    for (const key of update.remove ?? []) delete labels[key];
    if (Object.keys(labels).length > MAX_LABELS) {
      throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `body.set: a device has at most ${MAX_LABELS} labels; this change would leave ${id} with ${Object.keys(labels).length}`, { httpStatus: 400 });
    }
    const stored = await this.repo.setLabels(id, labels);
    current.labels = stored.labels;
    this.changed(id, 'labels');
    return this.view(current);
  }

  async revoke(id: string): Promise<Device> {
    const current = this.record(id);
    const stored = await this.repo.revoke(id, this.now());
    current.revokedAt = stored.revokedAt;
    this.changed(id, 'revoked');
    return this.view(current);
  }

  /** Called once a change is stored: the broker drops a revoked device, its desired state follows its labels. */
  onChange(listener: (id: string, change: DeviceChange) => void): void {
    this.#changeListeners.push(listener);
  }

  private changed(id: string, change: DeviceChange): void {
    for (const listener of this.#changeListeners) {
      try {
        listener(id, change);
      } catch (err) {
        this.logger.error({ err, deviceId: id, change }, 'a device change listener failed');
      }
    }
  }

  /** A status from the device's own topic (the broker only lets enrolled devices publish there). */
  applyStatus(id: string, status: StatusMessage): void {
    const record = this.#devices.get(id);
    if (!record) return;
    const lastSeen = this.now();
    record.observed =
      status.state === 'online'
        ? // The reported state stays until the device, now back, reports again.
          { ...record.observed, status: 'online', offlineReason: null, onlineSince: status.since, lastSeen, facts: status.facts, gateway: status.gateway ?? null }
        : // Facts outlive the connection: an operator still wants to know what the box is.
          { ...record.observed, status: 'offline', offlineReason: status.reason, onlineSince: null, lastSeen };
    this.markDirty(id);
  }

  /**
   * Any message from the device (the broker admitted it, so it is the device's): `lastSeen` moves
   * at once in memory; a store write is asked for at most every LAST_SEEN_WRITE_MS.
   */
  seen(id: string): void {
    const record = this.#devices.get(id);
    if (!record) return;
    const now = this.clock.now();
    record.observed = { ...record.observed, lastSeen: new Date(now).toISOString() };
    if (now - (this.#lastSeenMarked.get(id) ?? -Infinity) < LAST_SEEN_WRITE_MS) return;
    this.#lastSeenMarked.set(id, now);
    this.markDirty(id);
  }

  /**
   * The device's connection ended (closed, dropped, keepalive expired), with or without a last will.
   * A device that said `offline` first (a clean shutdown) keeps its reason.
   */
  connectionClosed(id: string): void {
    const record = this.#devices.get(id);
    if (record?.observed.status !== 'online') return;
    this.applyStatus(id, { v: PROTOCOL_VERSION, state: 'offline', reason: 'lost' });
  }

  private markDirty(id: string): void {
    this.#dirty.add(id);
    if (this.#flushTimer !== null) return;
    this.#flushTimer = this.clock.setTimeout(() => {
      this.#flushTimer = null;
      void this.flush();
    }, OBSERVATION_FLUSH_MS);
  }

  /** Writes the pending observations in one store write. */
  flush(): Promise<void> {
    const run = async () => {
      if (this.#dirty.size === 0) return;
      const batch = new Map<string, DeviceObservation>();
      for (const id of this.#dirty) batch.set(id, structuredClone(this.#devices.get(id)!.observed));
      this.#dirty.clear();
      try {
        await this.repo.saveObservations(batch);
      } catch (err) {
        this.logger.error({ err, devices: batch.size }, 'cannot save device observations; will retry');
        for (const id of batch.keys()) this.markDirty(id);
      }
    };
    this.#flushing = this.#flushing.then(run);
    return this.#flushing;
  }

  async close(): Promise<void> {
    if (this.#flushTimer !== null) this.clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    for (const handle of this.#expiryTimers.values()) this.clock.clearTimeout(handle);
    this.#expiryTimers.clear();
    await this.flush();
  }

  get(id: string): Device {
    return this.view(this.record(id));
  }

  /** The names of the services a device last reported (none for a device unknown or silent). */
  reportedServices(id: string): string[] {
    return this.#devices.get(id)?.observed.reported?.services.map((s) => s.name) ?? [];
  }

  /** Whether any device (revoked or not) last reported running `service`. */
  reportsService(service: string): boolean {
    for (const record of this.#devices.values()) if (record.observed.reported?.services.some((s) => s.name === service)) return true;
    return false;
  }

  /**
   * The replica counts every device not revoked last reported, by device then service. An offline
   * device keeps its last report (its gateway may still serve local clients); agents older than
   * replicas report none and are left out rather than guessed at.
   */
  serviceReplicas(): ServiceReplicaGauge[] {
    const gauges: ServiceReplicaGauge[] = [];
    for (const record of [...this.#devices.values()].sort((a, b) => a.id.localeCompare(b.id))) {
      if (record.revokedAt) continue;
      // One entry per name: a report naming a service twice must not repeat a series, which would fail the whole scrape.
      const byName = new Map<string, ReplicaCounts>();
      for (const s of record.observed.reported?.services ?? []) if (s.replicas && !byName.has(s.name)) byName.set(s.name, s.replicas);
      for (const [service, r] of [...byName].sort(([a], [b]) => a.localeCompare(b))) gauges.push({ device: record.id, service, desired: r.desired, ready: r.ready });
    }
    return gauges;
  }

  list(filter: { labels?: Record<string, string>; status?: DeviceStatus } = {}): Device[] {
    return [...this.#devices.values()]
      .filter((r) => !filter.labels || matchesLabels(r.labels, filter.labels))
      .map((r) => this.view(r))
      .filter((d) => !filter.status || d.status === filter.status)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  onlineCount(): number {
    let n = 0;
    for (const r of this.#devices.values()) if (r.observed.status === 'online' && !r.revokedAt) n++;
    return n;
  }
}
