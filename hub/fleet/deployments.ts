/**
 * Creating, changing and deleting deployments. A deployment pins its image by digest (from a hub
 * build, or a reference given with its digest), carries its limits, its replicas and the hash of a
 * service API key made here (the key is answered once), and is rolled out to the devices its
 * selector matches by a rollout (rollout-controller.ts). Every change of image bumps the revision
 * and keeps the old ones (a rollback returns devices to them); the service name, the URL on the
 * device and the key stay. Limits, scale and capture settings are the deployment's, not a
 * revision's: they change on every targeted device at once, without a rollout, and the agent
 * applies them in place. A new target moves devices in and out by a rollout (kind `retarget`).
 * A deleted deployment leaves every device at once and is kept, as deleted, with its history.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  captureOff,
  DEFAULT_MAX_CONCURRENT,
  DEFAULT_MAX_QUEUE,
  memoryLimit,
  resolveScale,
  scaleView,
  type Deployment,
  type DeploymentCreate,
  type DeploymentCreated,
  type KeyRotated,
  type ServiceUpdate,
} from '../../shared/api/deployments.js';
import { ACTIVE_ROLLOUT_PHASES, rolloutRequestProblem, type RolloutRequest } from '../../shared/api/rollouts.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { DEFAULT_SCALE, scaleOf, type CaptureSettings, type ShipLogs, type ServiceLimits, type ServiceScale } from '../../shared/protocol.js';
import { hashSecret, newSecret } from '../../shared/secrets.js';
import { graceEnd, previousAfterRotation, recordRotation, RETRY_MEMORY_MS, rotationViews } from '../auth/secret-rotation.js';
import type { ActorRecord, DeploymentChange, DeploymentRecord, DeploymentRepository, ImageRepository } from '../store/store.js';
import { deploymentProblem, type DesiredStates } from './desired-states.js';
import type { DeviceDirectory } from './device-directory.js';
import type { RolloutController } from './rollout-controller.js';

/** Service keys carry a prefix so people and secret scanners can tell them apart. */
const KEY_PREFIX = 'ems_';

export function serviceKey(secret: string): { key: string; keyId: string; keyHash: string } {
  const key = `${KEY_PREFIX}${secret}`;
  return { key, keyId: secret.slice(0, 8), keyHash: hashSecret(key) };
}

interface PinnedImage {
  image: string;
  digest: string;
  build: number | null;
  models: DeploymentRecord['models'];
}

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });
}

function formatSelector(target: DeploymentRecord['target']): string {
  return Object.entries(target)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** A new image would supersede the retarget, leaving devices half in, half out. */
function busyRetargeting(r: DeploymentRecord): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_CONFLICT, `rollout ${r.rollout.id} of service ${r.service} moves devices to a new target: let it finish or abort it before a new image`, { httpStatus: 409 });
}

/** Durations JSON Schema cannot bound (their value, not their text). */
function checkRollout(request: RolloutRequest | undefined): void {
  const problem = request && rolloutRequestProblem(request, 'body.rollout');
  if (problem) throw invalid(problem);
}

export function publicDeployment(record: DeploymentRecord): Deployment {
  const { keyHash: _hash, assignments: _assignments, previousKeys: _previous, changedBy: _changes, rotations, capture, scale, deletedAt, deletedBy, shipLogs, ...deployment } = record;
  return {
    ...deployment,
    capture: capture ?? captureOff(),
    // Absent in deployments stored before shipping existed.
    shipLogs: shipLogs ?? 'off',
    scale: scaleView(scale ?? DEFAULT_SCALE),
    deletedAt: deletedAt ?? null,
    deletedBy: deletedBy ? { keyId: deletedBy.keyId, keyName: deletedBy.keyName } : null,
    rotations: rotationViews(rotations),
  };
}

/** The limits and scale a request asks for, what it leaves out kept from `current`; 400 naming the field. */
function settingsOf(request: ServiceUpdate, current: { limits: ServiceLimits; scale: ServiceScale }): { limits: ServiceLimits; scale: ServiceScale } {
  const memory = request.memory === undefined ? null : memoryLimit(request.memory, 'body.memory');
  if (memory && !memory.ok) throw invalid(memory.error);
  const scale = resolveScale(request, current.scale);
  if (!scale.ok) throw invalid(scale.error);
  return {
    limits: {
      maxConcurrent: request.maxConcurrent ?? current.limits.maxConcurrent,
      maxQueue: request.maxQueue ?? current.limits.maxQueue,
      memoryBytes: memory ? memory.value : current.limits.memoryBytes,
      cpus: request.cpus ?? current.limits.cpus,
    },
    scale: scale.value,
  };
}

const SETTING_FIELDS = ['maxConcurrent', 'maxQueue', 'memory', 'cpus', 'replicas', 'minReplicas', 'maxReplicas', 'targetUtilization', 'scaleUpWindow', 'scaleDownWindow', 'shipLogs'] as const;

/** Records stored before log shipping existed have none: off. */
export function shipLogsOf(r: Pick<DeploymentRecord, 'shipLogs'>): ShipLogs {
  return r.shipLogs ?? 'off';
}

/** A name listed twice would only make every sample's settings longer. */
function captureSettings(capture: CaptureSettings): CaptureSettings {
  return { rate: capture.rate, maxBodyBytes: capture.maxBodyBytes, redact: [...new Set(capture.redact)] };
}

export class Deployments {
  /** Per service, the timer of the next end of a replaced key's grace. */
  readonly #keyExpiryTimers = new Map<string, unknown>();

  constructor(
    private readonly deps: {
      deployments: DeploymentRepository;
      images: ImageRepository;
      devices: DeviceDirectory;
      desired: DesiredStates;
      rollouts: RolloutController;
      clock: Clock;
      logger: Logger;
    },
  ) {}

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  /** Exactly one of `image` and `build`; a build must have succeeded (its smoke tests passed). */
  private async pin(source: ServiceUpdate): Promise<PinnedImage> {
    if ((source.image === undefined) === (source.build === undefined)) throw invalid('give exactly one of image (a reference pinned by digest) and build (a hub image id)');
    if (source.image !== undefined) {
      const digest = source.image.slice(source.image.lastIndexOf('@') + 1);
      // An image the hub built carries its model versions; a foreign one is taken as it is.
      const built = (await this.deps.images.list({})).filter((i) => i.digest === digest && i.status === 'succeeded').at(-1);
      return { image: source.image, digest, build: built?.id ?? null, models: built?.models ?? [] };
    }
    const image = await this.deps.images.get(source.build!);
    if (!image) throw new EdgemlError(ErrorCodes.HUB_IMAGE_NOT_FOUND, `image ${source.build} not found`, { httpStatus: 404 });
    if (image.status !== 'succeeded' || !image.ref || !image.digest) {
      throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `image ${image.id} is ${image.status}: only a build that succeeded can be deployed`, { httpStatus: 409 });
    }
    return { image: image.ref, digest: image.digest, build: image.id, models: image.models };
  }

  private matching(target: DeploymentRecord['target']): string[] {
    return this.deps.devices.list({ labels: target }).filter((d) => d.status !== 'revoked').map((d) => d.id);
  }

  /** Targeted devices, each with the revision of the service it should run now. */
  private targets(record: DeploymentRecord): Map<string, number | null> {
    return new Map(this.matching(record.target).map((id) => [id, Object.hasOwn(record.assignments, id) ? record.assignments[id]! : record.stableRevision]));
  }

  /** Remembers a change made under an Idempotency-Key in the record, in the change's own write. */
  private remember(record: DeploymentRecord, change: DeploymentChange): void {
    if (!change.by.idempotency) return;
    const since = this.deps.clock.now() - RETRY_MEMORY_MS;
    record.changedBy = [...(record.changedBy ?? []).filter((c) => Date.parse(c.at) > since), change];
  }

  /** What `made` marks: the deployment it created, changed (update, rotate-key) or deleted. */
  async madeBy(op: 'create' | 'delete' | DeploymentChange['op'], made: (actor: ActorRecord) => boolean): Promise<{ by: ActorRecord; record: DeploymentRecord; change?: DeploymentChange } | undefined> {
    if (op === 'delete') {
      const record = (await this.deps.deployments.listDeleted()).findLast((r) => made(r.deletedBy!));
      return record && { by: record.deletedBy!, record };
    }
    for (const record of await this.deps.deployments.list()) {
      if (op === 'create') {
        if (made(record.createdBy)) return { by: record.createdBy, record };
        continue;
      }
      const change = record.changedBy?.find((c) => c.op === op && made(c.by));
      if (change) return { by: change.by, record, change };
    }
    return undefined;
  }

  /** `secret` is random unless a retryable create derived it (hub/http/idempotency.ts). */
  async create(request: DeploymentCreate, actor: ActorRecord, secret = newSecret()): Promise<DeploymentCreated> {
    const defaults = { maxConcurrent: DEFAULT_MAX_CONCURRENT, maxQueue: DEFAULT_MAX_QUEUE, memoryBytes: null, cpus: null };
    const { limits, scale } = settingsOf(request, { limits: defaults, scale: DEFAULT_SCALE });
    checkRollout(request.rollout);
    const pinned = await this.pin(request);
    const { key, keyId, keyHash } = serviceKey(secret);
    const now = this.now();
    // A name deployed again counts on from its deleted history: a device's late report of the old
    // deployment's revision 1 must not pass for the new one's.
    const revision = 1 + Math.max(0, ...(await this.deps.deployments.listDeleted()).filter((d) => d.service === request.service).map((d) => d.revision));
    const record: DeploymentRecord = {
      service: request.service,
      revision,
      ...pinned,
      target: request.target,
      limits,
      scale,
      capture: request.capture ? captureSettings(request.capture) : captureOff(),
      shipLogs: request.shipLogs ?? 'off',
      keyId,
      keyHash,
      stableRevision: null,
      revisions: [{ revision, ...pinned, limits, createdAt: now }],
      assignments: {},
      // Filled in by the rollout that creates it.
      rollout: { id: 0, kind: 'create', revision, strategy: 'all-at-once', phase: 'running', devices: [] },
      createdAt: now,
      createdBy: actor,
      updatedAt: now,
    };
    if (await this.deps.deployments.get(request.service)) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${request.service} is already deployed: move it with \`edgeml service update\``, { httpStatus: 409 });
    // Before the write: a deployment devices would refuse must never be stored.
    await this.deps.desired.check(record, record.revision);
    const devices = this.targets(record);
    const { deployment } = await this.deps.rollouts.begin({ kind: 'create', service: record.service, revision, devices, fromRevision: null, request: request.rollout, actor, deployment: { add: record } });
    this.deps.logger.info({ service: record.service, image: record.image, target: record.target, limits, scale, by: actor.keyId }, 'deployment created');
    return { ...publicDeployment(await this.current(deployment.service)), key };
  }

  /**
   * Any of: a new image (a new revision, rolled out), new limits or scale (in place, no revision, no
   * rollout), a new target (a `retarget` rollout). A new image and a new target are two updates:
   * one rollout moves devices to a revision, the other in or out of the service, and an abort of
   * either must know which to undo.
   */
  async update(service: string, source: ServiceUpdate, actor: ActorRecord): Promise<Deployment> {
    checkRollout(source.rollout);
    const newImage = source.image !== undefined || source.build !== undefined;
    const newSettings = SETTING_FIELDS.some((f) => source[f] !== undefined);
    if (source.rollout && !newImage && source.target === undefined) throw invalid('body.rollout: only a new image or target is rolled out; limits and replicas apply in place');
    if (!newImage && !newSettings && source.target === undefined) {
      throw invalid('give at least one change: image or build, a limit (maxConcurrent, maxQueue, memory, cpus), replicas (replicas, minReplicas, maxReplicas, targetUtilization, scaleUpWindow, scaleDownWindow), shipLogs or target');
    }
    if (newImage && source.target !== undefined) throw invalid('body.target: change the target and the image in two updates (each is its own rollout)');
    const current = await this.current(service);
    // Checked now (400 before anything), applied in the write against the stored record, so two
    // updates of different settings at once both count.
    const settings = settingsOf(source, { limits: current.limits, scale: scaleOf(current) });
    const setSettings = (r: DeploymentRecord) => {
      if (!newSettings) return;
      const merged = settingsOf(source, { limits: r.limits, scale: scaleOf(r) });
      r.limits = merged.limits;
      r.scale = merged.scale;
      if (source.shipLogs !== undefined) r.shipLogs = source.shipLogs;
    };
    if (newImage) return this.updateImage(current, source, setSettings, actor);
    if (source.target !== undefined && !isDeepStrictEqual(source.target, current.target)) return this.retarget(current, source.target, source, setSettings, actor);
    if (!newSettings) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${service} already targets ${formatSelector(current.target)}`, { httpStatus: 409 });
    if (isDeepStrictEqual(settings, { limits: current.limits, scale: scaleOf(current) }) && (source.shipLogs ?? shipLogsOf(current)) === shipLogsOf(current)) {
      throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${service} already has these limits, replicas and log shipping: nothing to change`, { httpStatus: 409 });
    }
    return this.changeSettings(current, setSettings, actor);
  }

  private async updateImage(current: DeploymentRecord, source: ServiceUpdate, setSettings: (r: DeploymentRecord) => void, actor: ActorRecord): Promise<Deployment> {
    const { service } = current;
    const pinned = await this.pin(source);
    const revision = current.revision + 1;
    const update = (r: DeploymentRecord) => {
      if (r.image === pinned.image) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${service} already runs ${pinned.image} (revision ${r.revision})`, { httpStatus: 409 });
      // Another update got in first: this one's devices and revision were computed for the old one.
      if (r.revision + 1 !== revision) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${service} changed meanwhile (now revision ${r.revision}): try again`, { httpStatus: 409 });
      if (r.rollout.kind === 'retarget' && ACTIVE_ROLLOUT_PHASES.includes(r.rollout.phase)) throw busyRetargeting(r);
      setSettings(r);
      Object.assign(r, pinned);
      r.revision = revision;
      r.revisions.push({ revision, ...pinned, limits: r.limits, createdAt: this.now() });
      r.updatedAt = this.now();
      this.remember(r, { op: 'update', at: r.updatedAt, by: actor });
    };
    // Made on a copy and checked before the write: what devices would refuse is never stored.
    const next = structuredClone(current);
    update(next);
    await this.deps.desired.check(next, revision);
    const devices = this.targets(current);
    await this.deps.rollouts.begin({ kind: 'update', service, revision, devices, fromRevision: current.stableRevision, request: source.rollout, actor, deployment: { update } });
    // New limits reach the devices the rollout has not moved yet too, on the revision they run.
    if (!isDeepStrictEqual(next.limits, current.limits) || !isDeepStrictEqual(scaleOf(next), scaleOf(current)) || shipLogsOf(next) !== shipLogsOf(current)) await this.deps.desired.sync([...devices.keys()]);
    return publicDeployment(await this.current(service));
  }

  /** Limits and scale only: one write, then every targeted device's desired state at once. */
  private async changeSettings(current: DeploymentRecord, setSettings: (r: DeploymentRecord) => void, actor: ActorRecord): Promise<Deployment> {
    const change = (r: DeploymentRecord) => {
      setSettings(r);
      r.updatedAt = this.now();
      this.remember(r, { op: 'update', at: r.updatedAt, by: actor });
    };
    const next = structuredClone(current);
    change(next);
    await this.deps.desired.check(next, next.stableRevision ?? next.revision);
    const record = await this.deps.deployments.update(current.service, change);
    const devices = await this.deps.desired.sync([...this.targets(record).keys(), ...Object.keys(record.assignments)]);
    this.deps.logger.info({ service: record.service, limits: record.limits, scale: record.scale, shipLogs: shipLogsOf(record), devices: devices.length, by: actor.keyId }, 'service limits changed');
    return publicDeployment(record);
  }

  /**
   * Devices that newly match get the stable revision and devices that no longer match lose the
   * service, by a rollout with the deployment's strategy. Until a device's turn, an assignment keeps
   * it as it was: null for one coming in, its revision for one going out.
   */
  private async retarget(current: DeploymentRecord, target: DeploymentRecord['target'], source: ServiceUpdate, setSettings: (r: DeploymentRecord) => void, actor: ActorRecord): Promise<Deployment> {
    const { service } = current;
    const active = (await this.deps.rollouts.list({ service, active: true }))[0];
    if (active) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `rollout ${active.id} of service ${service} is ${active.phase}: let it finish or abort it before changing the target`, { httpStatus: 409 });
    const before = this.targets(current);
    const after = new Set(this.matching(target));
    const stable = current.stableRevision;
    const from = new Map<string, number | null>();
    const to = new Map<string, number | null>();
    for (const id of after) {
      if (!before.has(id) && stable !== null) [from, to].forEach((m, i) => m.set(id, i === 0 ? null : stable));
    }
    for (const [id, revision] of before) {
      if (!after.has(id) && revision !== null) [from, to].forEach((m, i) => m.set(id, i === 0 ? revision : null));
    }
    const update = (r: DeploymentRecord) => {
      if (r.rollout.id !== current.rollout.id) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${service} changed meanwhile (rollout ${r.rollout.id}): try again`, { httpStatus: 409 });
      setSettings(r);
      r.target = target;
      for (const [id, revision] of from) r.assignments[id] = revision;
      r.updatedAt = this.now();
      this.remember(r, { op: 'update', at: r.updatedAt, by: actor });
    };
    const next = structuredClone(current);
    update(next);
    await this.deps.desired.check(next, stable ?? next.revision);
    await this.deps.rollouts.begin({
      kind: 'retarget',
      service,
      revision: stable,
      devices: from,
      to,
      target: { from: current.target, to: target },
      fromRevision: stable,
      request: source.rollout,
      actor,
      deployment: { update },
    });
    // Devices that run it (kept, or leaving later) get new limits and scale at once.
    await this.deps.desired.sync([...before.keys()]);
    this.deps.logger.info({ service, from: current.target, to: target, joining: [...to.values()].filter((v) => v !== null).length, leaving: [...to.values()].filter((v) => v === null).length, by: actor.keyId }, 'service target changed');
    return publicDeployment(await this.current(service));
  }

  /**
   * Takes the service off every device at once (an active rollout of it is aborted, not rolled back:
   * there is nothing to go back to) and keeps the record, as deleted, with its revisions and
   * rollouts. The name can be deployed again.
   */
  async delete(service: string, actor: ActorRecord): Promise<Deployment> {
    const current = await this.current(service);
    const had = [...this.targets(current).keys(), ...Object.keys(current.assignments)];
    const record = await this.deps.deployments.delete(service, this.now(), actor, `service deleted by ${actor.keyName} (${actor.keyId})`);
    await this.deps.desired.sync([...new Set(had)]);
    this.deps.logger.info({ service, revision: record.revision, devices: had.length, rollout: record.rollout.id, by: actor.keyId }, 'service deleted');
    return publicDeployment(record);
  }

  /**
   * A new service key; the old one stays valid for `grace` beside it (devices get both hashes, each
   * old one with its end), then only the new one. No new revision, no restart. Keys replaced
   * earlier end no later than this grace (secret-rotation.ts).
   */
  async rotateKey(service: string, grace: string, actor: ActorRecord, secret = newSecret()): Promise<KeyRotated> {
    const now = this.deps.clock.now();
    const until = graceEnd(grace, now);
    const { key, keyId, keyHash } = serviceKey(secret);
    const record = await this.deps.deployments.update(service, (r) => {
      // The desired state's names (keyHash, until) are the protocol's; the rule is the one every secret follows.
      const asSecrets = (r.previousKeys ?? []).map((p) => ({ hash: p.keyHash, validUntil: p.until }));
      r.previousKeys = previousAfterRotation(asSecrets, r.keyHash, until, now).previous.map((p) => ({ keyHash: p.hash, until: p.validUntil }));
      r.keyHash = keyHash;
      r.keyId = keyId;
      r.updatedAt = new Date(now).toISOString();
      // The idempotency mark lives in changedBy (with the other changes), so the rotation record goes without it.
      r.rotations = recordRotation(r.rotations, { at: r.updatedAt, by: { keyId: actor.keyId, keyName: actor.keyName }, previousValidUntil: until }, now);
      this.remember(r, { op: 'rotate-key', at: r.updatedAt, by: actor, previousKeyValidUntil: until ?? undefined });
    });
    await this.deps.desired.sync([...this.targets(record).keys()]);
    this.armKeyExpiry(record);
    this.deps.logger.info({ service, keyId, previousValidUntil: until, by: actor.keyId }, 'service key rotated');
    return { ...publicDeployment(record), key, previousKeyValidUntil: until };
  }

  /**
   * Arms the drop of every stored replaced key at its end, also of those that ended while the hub
   * was down (their timers went with it). Called once as the hub starts.
   */
  async start(): Promise<void> {
    for (const record of await this.deps.deployments.list()) this.armKeyExpiry(record);
  }

  /**
   * Devices stop taking an old key at its end by their own clock; this also takes its hash out of
   * their desired state and the store, at the next end of a grace (one timer per service).
   */
  private armKeyExpiry(record: DeploymentRecord): void {
    const { service } = record;
    const pending = this.#keyExpiryTimers.get(service);
    if (pending !== undefined) this.deps.clock.clearTimeout(pending);
    this.#keyExpiryTimers.delete(service);
    const ends = (record.previousKeys ?? []).map((p) => Date.parse(p.until));
    if (ends.length === 0) return;
    const timer = this.deps.clock.setTimeout(
      () => {
        this.#keyExpiryTimers.delete(service);
        this.dropExpiredKeys(service).catch((err: unknown) => this.deps.logger.info({ err, service }, 'expired service keys not dropped (the service is gone?)'));
      },
      Math.max(0, Math.min(...ends) - this.deps.clock.now()),
    );
    // A pending expiry must not keep a stopping hub alive.
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#keyExpiryTimers.set(service, timer);
  }

  private async dropExpiredKeys(service: string): Promise<void> {
    const now = this.deps.clock.now();
    const record = await this.deps.deployments.update(service, (r) => {
      r.previousKeys = (r.previousKeys ?? []).filter((p) => Date.parse(p.until) > now);
    });
    await this.deps.desired.sync([...this.targets(record).keys()]);
    this.armKeyExpiry(record);
  }

  /** The whole settings replace the old ones; the targeted devices get them with their next desired state. */
  async setCapture(service: string, capture: CaptureSettings, actor: ActorRecord): Promise<Deployment> {
    const settings = captureSettings(capture);
    const change = (r: DeploymentRecord) => {
      r.capture = settings;
      r.updatedAt = this.now();
    };
    const next = await this.current(service);
    change(next);
    await this.deps.desired.check(next, next.revision);
    const record = await this.deps.deployments.update(service, change);
    await this.deps.desired.sync([...this.targets(record).keys()]);
    this.deps.logger.info({ service, rate: settings.rate, maxBodyBytes: settings.maxBodyBytes, redact: settings.redact, by: actor.keyId }, 'capture settings changed');
    return publicDeployment(record);
  }

  private async current(service: string): Promise<DeploymentRecord> {
    const record = await this.deps.deployments.get(service);
    if (!record) throw new EdgemlError(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${service} is not deployed`, { httpStatus: 404 });
    return record;
  }

  /** The live deployment, else the latest deleted one of that name (its `deletedAt` says so). */
  async get(service: string): Promise<Deployment> {
    const record = await this.deps.deployments.get(service);
    if (!record) {
      const deleted = (await this.deps.deployments.listDeleted()).findLast((r) => r.service === service);
      if (deleted) return publicDeployment(deleted);
      return publicDeployment(await this.current(service));
    }
    const problem = deploymentProblem(record);
    if (problem) {
      throw new EdgemlError(ErrorCodes.HUB_RECORD_INVALID, `stored service ${service} no longer validates (${problem}): the hub skips it; see GET /api/v1/problems`, { httpStatus: 409 });
    }
    return publicDeployment(record);
  }

  /** Stored deployments that no longer validate are left out (GET /api/v1/problems lists them); deleted ones after the live ones. */
  async list(opts: { deleted?: boolean } = {}): Promise<Deployment[]> {
    const live = (await this.deps.deployments.list()).filter((d) => deploymentProblem(d) === null);
    const deleted = opts.deleted ? await this.deps.deployments.listDeleted() : [];
    return [...live, ...deleted].map(publicDeployment);
  }

  /** The services a device should run now match its labels (after enrollment or a label change). */
  async deviceChanged(deviceId: string): Promise<void> {
    await this.deps.desired.sync([deviceId]);
  }
}
