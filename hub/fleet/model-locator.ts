/**
 * Which model versions run where. The truth is what devices report, not what the hub asked for: a
 * device runs the image of its serving revision, and the hub build with that image's digest names
 * the model versions in it (by digest, as deployments pin builds, so the repository a reference
 * was spelled with does not matter).
 *
 * A report names the image of the revision it is about, which is not the serving one while a new
 * revision is pulled, starting or failing. Revision numbers belong to the hub (each change of a
 * deployment gets a new one), so another device that reports the serving revision tells its image;
 * when none does, the hub cannot tell and says so rather than guess.
 */
import { DIGEST_PATTERN } from '../../shared/api/common.js';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Device } from '../../shared/api/devices.js';
import type { DeviceServices, ModelPlacement, ModelVersionRef, ModelWhere, ServingService, UnresolvedService } from '../../shared/api/where.js';
import type { ReportedService } from '../../shared/protocol.js';
import type { ImageRecord, ImageRepository, ModelRepository } from '../store/store.js';

/** What the locator needs of a device: who it is and what it last reported. */
export type DeviceReport = Pick<Device, 'id' | 'status' | 'services'>;

/** A succeeded hub build, by the digest its reference pins. */
export interface KnownBuild {
  id: number;
  models: ModelVersionRef[];
}

/** `service@revision` → its image, or null when devices disagree (then nobody's word is taken). */
export type RevisionImages = ReadonlyMap<string, string | null>;

/** What a deployment says each of its revisions runs. */
export type DeploymentRevisions = Pick<Deployment, 'service' | 'revisions'>;

const revisionKey = (service: string, revision: number) => `${service}@${revision}`;
const digestRe = new RegExp(DIGEST_PATTERN);

/** The digest of `repository@sha256:…`; null for anything not pinned by digest. */
export function digestOf(image: string): string | null {
  const digest = image.slice(image.lastIndexOf('@') + 1);
  return digestRe.test(digest) ? digest : null;
}

/** Succeeded builds by digest; of several with one digest (a rebuild), the newest, as deployments pin. */
export function buildsByDigest(images: readonly Pick<ImageRecord, 'id' | 'status' | 'digest' | 'models'>[]): Map<string, KnownBuild> {
  const builds = new Map<string, KnownBuild>();
  for (const image of images) if (image.status === 'succeeded' && image.digest) builds.set(image.digest, { id: image.id, models: image.models });
  return builds;
}

/** The image of every revision some device reports on. */
export function revisionImages(devices: readonly DeviceReport[], deployments: readonly DeploymentRevisions[] = []): RevisionImages {
  const images = new Map<string, string | null>();
  for (const device of devices) {
    for (const s of device.services) {
      const key = revisionKey(s.name, s.revision);
      const seen = images.get(key);
      images.set(key, seen === undefined || seen === s.image ? s.image : null);
    }
  }
  // The deployments' own history is the authority; reports only fill in what it lacks.
  for (const d of deployments) for (const r of d.revisions) images.set(revisionKey(d.service, r.revision), r.image);
  return images;
}

/** The image the gateway routes this service to; null when nothing serves or the hub cannot tell. */
export function servingImage(service: ReportedService, known: RevisionImages): string | null {
  if (service.servingRevision === null) return null;
  if (service.servingRevision === service.revision) return service.image;
  return known.get(revisionKey(service.name, service.servingRevision)) ?? null;
}

interface Serving {
  image: string | null;
  digest: string | null;
  build: KnownBuild | null;
  /** Something serves, but the hub cannot tell which image. */
  unknown: boolean;
}

function resolve(service: ReportedService, known: RevisionImages, builds: ReadonlyMap<string, KnownBuild>): Serving {
  const image = servingImage(service, known);
  const digest = image === null ? null : digestOf(image);
  return { image, digest, build: digest === null ? null : (builds.get(digest) ?? null), unknown: image === null && service.servingRevision !== null };
}

/** A device's services with the serving image and the model versions in it. */
export function resolveServices(device: DeviceReport, known: RevisionImages, builds: ReadonlyMap<string, KnownBuild>): ServingService[] {
  return device.services.map((s) => {
    const { image, digest, build, unknown } = resolve(s, known, builds);
    return {
      name: s.name,
      revision: s.revision,
      phase: s.phase,
      servingRevision: s.servingRevision,
      image,
      digest,
      build: build?.id ?? null,
      models: unknown ? null : (build?.models ?? []),
      ...(s.replicas ? { replicas: s.replicas } : {}),
      ...(s.lastScale ? { lastScale: s.lastScale } : {}),
    };
  });
}

/**
 * Every device service serving `model` (any version, or `version`), by device then service, and the
 * services whose serving image the hub cannot tell (they may serve it).
 */
export function locateModel(
  devices: readonly DeviceReport[],
  builds: ReadonlyMap<string, KnownBuild>,
  wanted: { name: string; version: number | null },
  deployments: readonly DeploymentRevisions[] = [],
): Pick<ModelWhere, 'placements' | 'unresolved'> {
  const known = revisionImages(devices, deployments);
  const placements: ModelPlacement[] = [];
  const unresolved: UnresolvedService[] = [];
  for (const device of [...devices].sort((a, b) => a.id.localeCompare(b.id))) {
    for (const s of [...device.services].sort((a, b) => a.name.localeCompare(b.name))) {
      if (s.servingRevision === null) continue;
      const where = { device: device.id, deviceStatus: device.status, service: s.name, revision: s.revision, phase: s.phase, servingRevision: s.servingRevision };
      const { image, digest, build, unknown } = resolve(s, known, builds);
      if (unknown) unresolved.push(where);
      // Only hub builds name their models: an image built elsewhere serves none the hub knows of.
      if (image === null || digest === null || build === null) continue;
      for (const model of build.models) {
        if (model.name === wanted.name && (wanted.version === null || model.version === wanted.version)) placements.push({ ...where, image, digest, build: build.id, model });
      }
    }
  }
  return { placements, unresolved };
}

/** The locator over the hub's live device directory and its build records. */
export class ModelLocator {
  constructor(
    private readonly deps: {
      devices: { list(): DeviceReport[]; get(id: string): DeviceReport };
      images: Pick<ImageRepository, 'list'>;
      models: Pick<ModelRepository, 'resolve'>;
      deployments: { list(): Promise<DeploymentRevisions[]> };
    },
  ) {}

  private async builds(): Promise<Map<string, KnownBuild>> {
    return buildsByDigest(await this.deps.images.list({ status: 'succeeded' }));
  }

  /** Throws HUB_E_MODEL_NOT_FOUND (404) for a model, or a version of it, the registry does not have. */
  async where(name: string, version: number | null): Promise<ModelWhere> {
    await this.deps.models.resolve(name, version === null ? { latest: true } : { version });
    return { model: name, version, ...locateModel(this.deps.devices.list(), await this.builds(), { name, version }, await this.deps.deployments.list()) };
  }

  /** Throws HUB_E_DEVICE_NOT_FOUND (404). */
  async deviceServices(id: string): Promise<DeviceServices> {
    const device = this.deps.devices.get(id);
    const services = resolveServices(device, revisionImages(this.deps.devices.list(), await this.deps.deployments.list()), await this.builds());
    return { device: device.id, services };
  }
}
