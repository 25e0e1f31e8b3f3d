/**
 * Each device's desired state: the services of every deployment whose selector matches its labels,
 * each at the revision the device is on (rollouts move devices between revisions).
 * A device's generation goes up only when its services change; the new state is stored first (one
 * write for all changed devices), then published retained with QoS 1, so a device that connects
 * later, or reconnects, gets it from the broker. The broker keeps retained messages in memory, so
 * a starting hub publishes every stored state again, with the same generation. Every state carries
 * the hub's epoch, new at every start: generations count within it, so a device also takes a lower
 * generation from a hub restored from a backup or started over with another store.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../shared/logger.js';
import { encodeMessage, PROTOCOL_VERSION, type DesiredService } from '../../shared/protocol.js';
import { deviceTopic } from '../../shared/topics.js';
import type { DeploymentRecord, DeploymentRepository, DesiredRecord, DesiredRepository } from '../store/store.js';
import type { Broker } from '../broker/broker.js';
import { matchesLabels } from '../../shared/api/devices.js';
import type { DeviceDirectory } from './device-directory.js';

/**
 * The service a device runs for deployment `d`: its assignment (a rollout moved it), else the stable
 * revision. A device that joins while an all-at-once create is still running gets it too: "all at
 * once" means everyone, and there is nothing older to give it. Capture rides along, whatever the
 * revision, only when it is on: a device with capture off gets the state it got before capture
 * existed, and turning capture on or off is a new generation without a new revision.
 */
export function desiredService(d: DeploymentRecord, deviceId: string): DesiredService | null {
  const r = d.rollout;
  const creating = r.kind === 'create' && r.strategy === 'all-at-once' && (r.phase === 'running' || r.phase === 'paused') ? r.revision : null;
  const revision = Object.hasOwn(d.assignments, deviceId) ? d.assignments[deviceId]! : (d.stableRevision ?? creating);
  const spec = revision === null ? undefined : d.revisions.find((r) => r.revision === revision);
  if (!spec) return null;
  const service: DesiredService = { name: d.service, revision: spec.revision, image: spec.image, limits: spec.limits, keyHash: d.keyHash, models: spec.models };
  // Keys a rotation replaced, during their grace; absent otherwise, so older agents' states stay as they were.
  if (d.previousKeys?.length) service.previousKeys = d.previousKeys;
  return d.capture && d.capture.rate > 0 ? { ...service, capture: d.capture } : service;
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
    private readonly logger: Logger,
  ) {}

  static async load(deps: { repo: DesiredRepository; deployments: DeploymentRepository; devices: DeviceDirectory; broker: Pick<Broker, 'publish'>; logger: Logger }): Promise<DesiredStates> {
    const states = new DesiredStates(deps.repo, deps.deployments, deps.devices, deps.broker, deps.logger);
    states.#states = await deps.repo.all();
    return states;
  }

  get(deviceId: string): DesiredRecord | undefined {
    const state = this.#states.get(deviceId);
    return state && structuredClone(state);
  }

  /** Publishes every stored state again (a starting hub's broker has no retained messages). */
  async republish(): Promise<void> {
    for (const [id, state] of this.#states) await this.publish(id, state);
  }

  /** Recomputes the given devices (all when omitted); stores and publishes those that changed. */
  sync(deviceIds?: readonly string[]): Promise<string[]> {
    const run = () => this.syncNow(deviceIds);
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  private async syncNow(deviceIds: readonly string[] | undefined): Promise<string[]> {
    const deployments = await this.deployments.list();
    const ids = deviceIds ?? this.devices.list().map((d) => d.id);
    const changes = new Map<string, DesiredRecord>();
    for (const id of ids) {
      const device = this.devices.get(id);
      const services =
        device.status === 'revoked'
          ? []
          : deployments
              .filter((d) => matchesLabels(device.labels, d.target))
              .flatMap((d) => desiredService(d, id) ?? [])
              .sort((a, b) => a.name.localeCompare(b.name));
      const current = this.#states.get(id);
      if (current ? isDeepStrictEqual(current.services, services) : services.length === 0) continue;
      changes.set(id, { generation: (current?.generation ?? 0) + 1, services });
    }
    if (changes.size === 0) return [];
    await this.repo.save(changes);
    for (const [id, state] of changes) {
      this.#states.set(id, state);
      this.logger.info({ deviceId: id, generation: state.generation, services: state.services.map((s) => `${s.name}@${s.revision}`) }, 'desired state changed');
      await this.publish(id, state);
    }
    return [...changes.keys()];
  }

  private async publish(deviceId: string, state: DesiredRecord): Promise<void> {
    const payload = encodeMessage('desired', { v: PROTOCOL_VERSION, epoch: this.repo.epoch(), generation: state.generation, services: state.services });
    await this.broker.publish(deviceTopic(deviceId, 'desired'), payload, { qos: 1, retain: true });
  }
}
