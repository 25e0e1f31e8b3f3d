/**
 * Each device's desired state: the services of every deployment whose selector matches its labels
 * (or that a running retarget still assigns it), each at the revision the device is on (rollouts move devices
 * between revisions), with the deployment's current limits and scale whatever that revision.
 * A device's generation goes up only when its services change; the new state is stored first (one
 * write for all changed devices), then published retained with QoS 1, so a device that connects
 * later, or reconnects, gets it from the broker. The broker keeps retained messages in memory, so
 * a starting hub publishes every stored state again, with the same generation. Every state carries
 * the hub's epoch, new at every start: generations count within it, so a device also takes a lower
 * generation from a hub restored from a backup or started over with another store.
 */
import { isDeepStrictEqual } from 'node:util';
import { matchesLabels } from '../../shared/api/devices.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { decodeMessage, DesiredService, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { compileChecker, type Checker, type CheckResult } from '../../shared/schema.js';
import { deviceTopic } from '../../shared/topics.js';
import type { Broker } from '../broker/broker.js';
import type { StoredProblems } from '../store/problems.js';
import type { DeploymentRecord, DeploymentRepository, DesiredRecord, DesiredRepository } from '../store/store.js';
import type { DeviceDirectory } from './device-directory.js';

/** `now` (ms) leaves out replaced keys whose grace ended: the store keeps them until their drop (Deployments), which a restart can delay. */
function serviceAt(d: DeploymentRecord, spec: DeploymentRecord['revisions'][number], now: number): DesiredService {
  // Limits are the deployment's: changing them moves no device to another revision.
  const service: DesiredService = { name: d.service, revision: spec.revision, image: spec.image, limits: d.limits, keyHash: d.keyHash, models: spec.models };
  // Keys a rotation replaced, during their grace; absent otherwise, so older agents' states stay as they were.
  const previousKeys = (d.previousKeys ?? []).filter((p) => Date.parse(p.until) > now);
  if (previousKeys.length) service.previousKeys = previousKeys;
  if (d.capture && d.capture.rate > 0) service.capture = d.capture;
  // Only when on, like capture: an older agent refuses a field it does not know.
  if (d.shipLogs === 'error') service.shipLogs = 'error';
  // Absent at one replica (whatever its autoscaler settings, which then do nothing): such a state is
  // byte for byte what agents before replicas got, and they refuse a field they do not know.
  if (d.scale && d.scale.maxReplicas > 1) service.scale = d.scale;
  return service;
}

/**
 * The service a device runs for deployment `d` (whose target it matches, or which a rollout assigned
 * it): its assignment (a rollout moved it), else the stable revision. A device that joins while an all-at-once create is still running gets it too: "all at
 * once" means everyone, and there is nothing older to give it. Capture rides along, whatever the
 * revision, only when it is on: a device with capture off gets the state it got before capture
 * existed, and turning capture on or off is a new generation without a new revision.
 */
export function desiredService(d: DeploymentRecord, deviceId: string, now: number): DesiredService | null {
  const r = d.rollout;
  const creating = r.kind === 'create' && r.strategy === 'all-at-once' && (r.phase === 'running' || r.phase === 'paused') ? r.revision : null;
  const revision = Object.hasOwn(d.assignments, deviceId) ? d.assignments[deviceId]! : (d.stableRevision ?? creating);
  const spec = revision === null ? undefined : d.revisions.find((r) => r.revision === revision);
  return spec ? serviceAt(d, spec, now) : null;
}

/**
 * While a retarget (or the rollback of one) runs, a device outside the target keeps the service it
 * was assigned until the rollout takes it away. Otherwise the target alone decides: a device
 * relabelled out of it loses the service at once.
 */
function heldOutsideTarget(d: DeploymentRecord, deviceId: string): boolean {
  const r = d.rollout;
  return (r.kind === 'retarget' || r.kind === 'rollback') && (r.phase === 'running' || r.phase === 'paused') && Object.hasOwn(d.assignments, deviceId);
}

let serviceChecker: Checker<DesiredService> | undefined;

/** Why a device would refuse some revision of `d` (`revision 2: limits.memoryBytes: …`), or null. */
export function deploymentProblem(d: DeploymentRecord): string | null {
  serviceChecker ??= compileChecker(DesiredService);
  try {
    for (const spec of d.revisions) {
      // Every replaced key, ended or not: the check is of the record, whenever it is read.
      const checked = serviceChecker(JSON.parse(JSON.stringify(serviceAt(d, spec, -Infinity))));
      if (!checked.ok) return `revision ${spec.revision}: ${checked.error}`;
    }
  } catch (err) {
    // A record edited by hand can lack the very fields this walks over.
    return `damaged: ${(err as Error).message}`;
  }
  return null;
}

/** The payload a device gets, or why it would drop it: the device's own check (schema and size). */
function desiredPayload(epoch: string, state: DesiredRecord): CheckResult<Buffer> {
  const payload = Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, epoch, generation: state.generation, services: state.services }));
  const checked = decodeMessage('desired', payload);
  return checked.ok ? { ok: true, value: payload } : checked;
}

export class DesiredStates {
  #states = new Map<string, DesiredRecord>();
  /** Syncs run one at a time, so two changes never compute from the same old state. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly repo: DesiredRepository,
    private readonly deployments: DeploymentRepository,
    private readonly devices: DeviceDirectory,
    private readonly broker: Pick<Broker, 'publish'>,
    private readonly problems: StoredProblems,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  static async load(deps: {
    repo: DesiredRepository;
    deployments: DeploymentRepository;
    devices: DeviceDirectory;
    broker: Pick<Broker, 'publish'>;
    problems: StoredProblems;
    /** Absent: the system's. */
    clock?: Clock;
    logger: Logger;
  }): Promise<DesiredStates> {
    const states = new DesiredStates(deps.repo, deps.deployments, deps.devices, deps.broker, deps.problems, deps.clock ?? systemClock, deps.logger);
    states.#states = await deps.repo.all();
    return states;
  }

  /** Whether the device's desired state names the service (no copy: for every series of a scrape). */
  wants(deviceId: string, service: string): boolean {
    return this.#states.get(deviceId)?.services.some((s) => s.name === service) ?? false;
  }

  get(deviceId: string): DesiredRecord | undefined {
    const state = this.#states.get(deviceId);
    return state && structuredClone(state);
  }

  /**
   * Publishes every stored state again (a starting hub's broker has no retained messages). One that
   * a device would refuse is reported and skipped: the next sync computes it afresh.
   */
  async republish(): Promise<void> {
    for (const [id, state] of this.#states) {
      const payload = desiredPayload(this.repo.epoch(), state);
      if (payload.ok) await this.publish(id, payload.value);
      else this.problems.report('desired', id, `stored generation ${state.generation} would be refused: ${payload.error}`);
    }
  }

  /** Recomputes the given devices (all when omitted); stores and publishes those that changed. */
  sync(deviceIds?: readonly string[]): Promise<string[]> {
    return this.serially(() => this.syncNow(deviceIds));
  }

  /**
   * Clears a revoked device's retained state from the broker (an empty retained message), after any
   * sync already queued; `publish` sends it nothing more, at start or later.
   */
  forget(deviceId: string): Promise<void> {
    return this.serially(() => this.broker.publish(deviceTopic(deviceId, 'desired'), Buffer.alloc(0), { qos: 1, retain: true }));
  }

  private serially<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Throws HUB_E_INVALID_REQUEST (400) when a device would refuse what `next` (a deployment about to
   * be stored) gives it: any of its revisions, or the desired state of a device it targets once that
   * device is on `revision`. Called before the write, so a refused change leaves nothing behind.
   */
  async check(next: DeploymentRecord, revision: number): Promise<void> {
    const problem = deploymentProblem(next);
    if (problem) throw invalid(`service ${next.service} ${problem}`);
    // Skipped deployments stay skipped: they cannot make another one's change fail.
    const others = this.usable((await this.deployments.list()).filter((d) => d.service !== next.service));
    for (const device of this.devices.list({ labels: next.target })) {
      if (device.status === 'revoked') continue;
      const moved = { ...next, assignments: { ...next.assignments, [device.id]: revision } };
      const state = { generation: (this.#states.get(device.id)?.generation ?? 0) + 1, services: this.servicesOf(device.id, [...others, moved]) };
      const payload = desiredPayload(this.repo.epoch(), state);
      if (!payload.ok) throw invalid(`device ${device.id} would refuse its desired state with service ${next.service}: ${payload.error}`);
    }
  }

  /** The deployments devices can be given; the others are reported (and cleared once they validate). */
  private usable(deployments: DeploymentRecord[]): DeploymentRecord[] {
    return deployments.filter((d) => {
      const problem = deploymentProblem(d);
      if (problem) this.problems.report('deployment', d.service, `devices would refuse ${problem}; its devices are not given it`);
      else this.problems.clear('deployment', d.service);
      return problem === null;
    });
  }

  private servicesOf(deviceId: string, deployments: readonly DeploymentRecord[]): DesiredService[] {
    const device = this.devices.get(deviceId);
    if (device.status === 'revoked') return [];
    const now = this.clock.now();
    return deployments
      .filter((d) => matchesLabels(device.labels, d.target) || heldOutsideTarget(d, deviceId))
      .flatMap((d) => desiredService(d, deviceId, now) ?? [])
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  private async syncNow(deviceIds: readonly string[] | undefined): Promise<string[]> {
    const deployments = this.usable(await this.deployments.list());
    const ids = deviceIds ?? this.devices.list().map((d) => d.id);
    const changes = new Map<string, { state: DesiredRecord; payload: Buffer }>();
    for (const id of ids) {
      const services = this.servicesOf(id, deployments);
      const current = this.#states.get(id);
      if (current ? isDeepStrictEqual(current.services, services) : services.length === 0) continue;
      const state = { generation: (current?.generation ?? 0) + 1, services };
      const payload = desiredPayload(this.repo.epoch(), state);
      if (!payload.ok) {
        this.problems.report('desired', id, `generation ${state.generation} would be refused, so it is not sent: ${payload.error}`);
        continue;
      }
      this.problems.clear('desired', id);
      changes.set(id, { state, payload: payload.value });
    }
    if (changes.size === 0) return [];
    await this.repo.save(new Map([...changes].map(([id, c]) => [id, c.state])));
    for (const [id, { state, payload }] of changes) {
      this.#states.set(id, state);
      this.logger.info({ deviceId: id, generation: state.generation, services: state.services.map((s) => `${s.name}@${s.revision}`) }, 'desired state changed');
      await this.publish(id, payload);
    }
    return [...changes.keys()];
  }

  private async publish(deviceId: string, payload: Buffer): Promise<void> {
    if (!this.devices.isActive(deviceId)) return;
    await this.broker.publish(deviceTopic(deviceId, 'desired'), payload, { qos: 1, retain: true });
  }
}

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });
}
