/**
 * Creating and moving deployments. A deployment pins its image by digest (from a hub build, or a
 * reference given with its digest), carries its limits and the hash of a service API key made here
 * (the key is answered once), and is rolled out to the devices its selector matches by the rollout
 * policy. Every change bumps the revision; the service name, the URL on the device and the key stay.
 */
import { DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_QUEUE, type Deployment, type DeploymentCreate, type DeploymentCreated, type ServiceUpdate } from '../../shared/api/deployments.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { parseSize } from '../../shared/size.js';
import { hashSecret, newSecret } from '../../shared/secrets.js';
import type { ActorRecord, DeploymentRecord, DeploymentRepository, ImageRepository } from '../store/store.js';
import type { DesiredStates } from './desired-states.js';
import type { DeviceDirectory } from './device-directory.js';
import type { RolloutPolicy } from './rollout-policy.js';

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
  const { keyHash: _hash, ...deployment } = record;
  return deployment;
}

export class Deployments {
  constructor(
    private readonly deps: {
      deployments: DeploymentRepository;
      images: ImageRepository;
      devices: DeviceDirectory;
      desired: DesiredStates;
      policy: RolloutPolicy;
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

  private targets(record: DeploymentRecord): string[] {
    return this.deps.devices.list({ labels: record.target }).filter((d) => d.status !== 'revoked').map((d) => d.id);
  }

  private async rollOut(record: DeploymentRecord): Promise<DeploymentRecord> {
    const devices = this.targets(record);
    const rollout = { revision: record.revision, strategy: this.deps.policy.strategy, startedAt: this.now(), devices };
    // Only the rollout of the current revision is recorded: a concurrent update that got further wins.
    const stored = await this.deps.deployments.update(record.service, (r) => {
      if (r.revision === record.revision) r.rollout = rollout;
    });
    await this.deps.policy.roll(devices, async (ids) => {
      await this.deps.desired.sync(ids);
    });
    this.deps.logger.info({ service: record.service, revision: record.revision, image: record.image, devices: devices.length }, 'rollout started');
    return stored;
  }

  async create(request: DeploymentCreate, actor: ActorRecord): Promise<DeploymentCreated> {
    const pinned = await this.pin(request);
    const key = `${KEY_PREFIX}${newSecret()}`;
    const now = this.now();
    const record: DeploymentRecord = {
      service: request.service,
      revision: 1,
      ...pinned,
      target: request.target,
      limits: {
        maxConcurrent: request.maxConcurrent ?? DEFAULT_MAX_CONCURRENT,
        maxQueue: request.maxQueue ?? DEFAULT_MAX_QUEUE,
        memoryBytes: request.memory === undefined ? null : parseSize(request.memory),
        cpus: request.cpus ?? null,
      },
      keyId: key.slice(KEY_PREFIX.length, KEY_PREFIX.length + 8),
      keyHash: hashSecret(key),
      rollout: { revision: 1, strategy: this.deps.policy.strategy, startedAt: now, devices: [] },
      createdAt: now,
      createdBy: actor,
      updatedAt: now,
    };
    await this.deps.deployments.add(record);
    this.deps.logger.info({ service: record.service, image: record.image, target: record.target, by: actor.keyId }, 'deployment created');
    return { ...publicDeployment(await this.rollOut(record)), key };
  }

  async update(service: string, source: ServiceUpdate): Promise<Deployment> {
    const pinned = await this.pin(source);
    const updated = await this.deps.deployments.update(service, (r) => {
      if (r.image === pinned.image) throw new EdgemlError(ErrorCodes.HUB_CONFLICT, `service ${service} already runs ${pinned.image} (revision ${r.revision})`, { httpStatus: 409 });
      Object.assign(r, pinned);
      r.revision += 1;
      r.updatedAt = this.now();
    });
    return publicDeployment(await this.rollOut(updated));
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
