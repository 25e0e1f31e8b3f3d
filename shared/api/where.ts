/**
 * Which model versions run where, as the hub works it out from what devices report: a device runs
 * the image of the revision its gateway routes to (`servingRevision`), and a hub build of that image
 * names the model versions in it. Reports name the image of the revision being rolled out, which is
 * the serving one once the rollout is done; for an older serving revision the hub looks for a device
 * that still reports that revision, and says so when none does (`image: null`, `unresolved`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { ReplicaCounts, ScaleDecision, SERVICE_PHASES } from '../protocol.js';
import { stringEnum } from '../schema.js';
import { Digest, Name, Version } from './common.js';
import { DEVICE_STATUSES, DeviceId } from './devices.js';
import { ImageId } from './images.js';

export const ModelVersionRef = Type.Object({ name: Name, version: Version, digest: Digest });
export type ModelVersionRef = Static<typeof ModelVersionRef>;

/** What a device reported about one service, the revision it serves, and what the hub knows of that revision's image. */
export const ServingService = Type.Object({
  name: Type.String({ description: 'the service' }),
  revision: Type.Integer({ minimum: 1, description: 'the revision the device reports on (being rolled out, or running)' }),
  phase: stringEnum(SERVICE_PHASES, { description: 'where `revision` stands on the device' }),
  servingRevision: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'the revision the gateway routes to; null when none serves' }),
  image: Type.Union([Type.String(), Type.Null()], {
    description: "the serving revision's image (repository@digest); null when nothing serves or the hub cannot tell",
  }),
  digest: Type.Union([Digest, Type.Null()]),
  build: Type.Union([ImageId, Type.Null()], { description: 'the hub build with that digest; null for an image built elsewhere' }),
  models: Type.Union([Type.Array(ModelVersionRef), Type.Null()], {
    description: 'model versions in the serving image (from its hub build; empty when nothing serves or for an image built elsewhere); null when the hub cannot tell',
  }),
  replicas: Type.Optional(ReplicaCounts),
  lastScale: Type.Optional(ScaleDecision),
});
export type ServingService = Static<typeof ServingService>;

export const DeviceServices = Type.Object({ device: DeviceId, services: Type.Array(ServingService) });
export type DeviceServices = Static<typeof DeviceServices>;

/** A service on a device, as `model where` lists it. */
const ServiceOnDevice = {
  device: DeviceId,
  deviceStatus: stringEnum(DEVICE_STATUSES, { description: 'an offline device is listed with what it last reported' }),
  service: Type.String(),
  revision: ServingService.properties.revision,
  phase: ServingService.properties.phase,
  servingRevision: Type.Integer({ minimum: 1 }),
};

export const ModelPlacement = Type.Object({
  ...ServiceOnDevice,
  image: Type.String({ description: "the serving revision's image (repository@digest)" }),
  digest: Digest,
  build: ImageId,
  model: ModelVersionRef,
});
export type ModelPlacement = Static<typeof ModelPlacement>;

export const UnresolvedService = Type.Object(ServiceOnDevice, {
  description: 'a service serving an older revision whose image no device reports any more: it may run the model',
});
export type UnresolvedService = Static<typeof UnresolvedService>;

export const ModelWhereQuery = Type.Object({ version: Type.Optional(Version) }, { additionalProperties: false });
export type ModelWhereQuery = Static<typeof ModelWhereQuery>;

export const ModelWhere = Type.Object({
  model: Name,
  version: Type.Union([Version, Type.Null()], { description: 'the version asked for; null for any' }),
  /** One per device, service and model version, by device then service. */
  placements: Type.Array(ModelPlacement),
  unresolved: Type.Array(UnresolvedService),
});
export type ModelWhere = Static<typeof ModelWhere>;
