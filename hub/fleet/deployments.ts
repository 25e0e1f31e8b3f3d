/**
 * Creating and moving deployments. A deployment pins its image by digest (from a hub build, or a
 * reference given with its digest), carries its limits and the hash of a service API key made here
 * (the key is answered once), and is rolled out to the devices its selector matches by a rollout
 * (rollout-controller.ts). Every change of image bumps the revision and keeps the old ones (a
 * rollback returns devices to them); the service name, the URL on the device and the key stay.
 * Capture settings are the deployment's, not a revision's: they change on every targeted device at
 * once, without a rollout, and restart no container.
 */
import { captureOff, DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_QUEUE, type Deployment, type DeploymentCreate, type DeploymentCreated, type ServiceUpdate } from '../../shared/api/deployments.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CaptureSettings } from '../../shared/protocol.js';
import { parseSize } from '../../shared/size.js';
import { hashSecret, newSecret } from '../../shared/secrets.js';
import type { ActorRecord, DeploymentRecord, DeploymentRepository, ImageRepository } from '../store/store.js';
import type { DesiredStates } from './desired-states.js';
import type { DeviceDirectory } from './device-directory.js';
import type { RolloutController } from './rollout-controller.js';

/** Service keys carry a prefix so people and secret scanners can tell them apart. */
const KEY_PREFIX = 'ems_';

interface PinnedImage {
  image: string;
  digest: string;
  build: number | null;
  models: DeploymentRecord['models'];
}

function invalid(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });
}

export function publicDeployment(record: DeploymentRecord): Deployment {
  const { keyHash: _hash, assignments: _assignments, capture, ...deployment } = record;
  return { ...deployment, capture: capture ?? captureOff() };
}

/** A name listed twice would only make every sample's settings longer. */
function captureSettings(capture: CaptureSettings): CaptureSettings {
  return { rate: capture.rate, maxBodyBytes: capture.maxBodyBytes, redact: [...new Set(capture.redact)] };
}

export class Deployments {
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

  /** Targeted devices, each with the revision of the service it should run now. */
  private targets(record: DeploymentRecord): Map<string, number | null> {
    const ids = this.deps.devices.list({ labels: record.target }).filter((d) => d.status !== 'revoked').map((d) => d.id);
    return new Map(ids.map((id) => [id, Object.hasOwn(record.assignments, id) ? record.assignments[id]! : record.stableRevision]));
  }

  async create(request: DeploymentCreate, actor: ActorRecord): Promise<DeploymentCreated> {
    const pinned = await this.pin(request);
    const key = `${KEY_PREFIX}${newSecret()}`;
    const now = this.now();
    const limits = {
      maxConcurrent: request.maxConcurrent ?? DEFAULT_MAX_CONCURRENT,
      maxQueue: request.maxQueue ?? DEFAULT_MAX_QUEUE,
      memoryBytes: request.memory === undefined ? null : parseSize(request.memory),
      cpus: request.cpus ?? null,
    };
    const record: DeploymentRecord = {
      service: request.service,
      revision: 1,
      ...pinned,
      target: request.target,
      limits,
      capture: request.capture ? captureSettings(request.capture) : captureOff(),
      keyId: key.slice(KEY_PREFIX.length, KEY_PREFIX.length + 8),
      keyHash: hashSecret(key),
      stableRevision: null,
      revisions: [{ revision: 1, ...pinned, limits, createdAt: now }],
      assignments: {},
      // Filled in by the rollout that creates it.
      rollout: { id: 0, kind: 'create', revision: 1, strategy: 'all-at-once', phase: 'running', devices: [] },
      createdAt: now,
      createdBy: actor,
      updatedAt: now,
    };
    if (await this.deps.deployments.get(request.service)) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${request.service} is already deployed: move it with \`edgeml service update\``, { httpStatus: 409 });
    const devices = this.targets(record);
    const { deployment } = await this.deps.rollouts.begin({ kind: 'create', service: record.service, revision: 1, devices, fromRevision: null, request: request.rollout, actor, deployment: { add: record } });
    this.deps.logger.info({ service: record.service, image: record.image, target: record.target, by: actor.keyId }, 'deployment created');
    return { ...publicDeployment(await this.current(deployment.service)), key };
  }

  async update(service: string, source: ServiceUpdate, actor: ActorRecord): Promise<Deployment> {
    const pinned = await this.pin(source);
    const current = await this.deps.deployments.get(service);
    if (!current) throw new EdgemlError(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${service} is not deployed`, { httpStatus: 404 });
    const revision = current.revision + 1;
    await this.deps.rollouts.begin({
      kind: 'update',
      service,
      revision,
      devices: this.targets(current),
      fromRevision: current.stableRevision,
      request: source.rollout,
      actor,
      deployment: {
        update: (r) => {
          if (r.image === pinned.image) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${service} already runs ${pinned.image} (revision ${r.revision})`, { httpStatus: 409 });
          // Another update got in first: this one's devices and revision were computed for the old one.
          if (r.revision + 1 !== revision) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${service} changed meanwhile (now revision ${r.revision}): try again`, { httpStatus: 409 });
          Object.assign(r, pinned);
          r.revision = revision;
          r.revisions.push({ revision, ...pinned, limits: r.limits, createdAt: this.now() });
          r.updatedAt = this.now();
        },
      },
    });
    return publicDeployment(await this.current(service));
  }

  /** The whole settings replace the old ones; the targeted devices get them with their next desired state. */
  async setCapture(service: string, capture: CaptureSettings, actor: ActorRecord): Promise<Deployment> {
    const settings = captureSettings(capture);
    const record = await this.deps.deployments.update(service, (r) => {
      r.capture = settings;
      r.updatedAt = this.now();
    });
    await this.deps.desired.sync([...this.targets(record).keys()]);
    this.deps.logger.info({ service, rate: settings.rate, maxBodyBytes: settings.maxBodyBytes, redact: settings.redact, by: actor.keyId }, 'capture settings changed');
    return publicDeployment(record);
  }

  private async current(service: string): Promise<DeploymentRecord> {
    const record = await this.deps.deployments.get(service);
    if (!record) throw new EdgemlError(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${service} is not deployed`, { httpStatus: 404 });
    return record;
  }

  async get(service: string): Promise<Deployment> {
    const record = await this.deps.deployments.get(service);
    if (!record) throw new EdgemlError(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${service} is not deployed`, { httpStatus: 404 });
    return publicDeployment(record);
  }

  async list(): Promise<Deployment[]> {
    return (await this.deps.deployments.list()).map(publicDeployment);
  }

  /** The services a device should run now match its labels (after enrollment or a label change). */
  async deviceChanged(deviceId: string): Promise<void> {
    await this.deps.desired.sync([deviceId]);
  }
}
