/**
 * One-command model updates: a service's current manifest with one model swapped for another
 * version of it, built into an image with the current image's platforms, then rolled out as a
 * service update (same URL, same key). The hub records each update and carries it on after a restart.
 */
import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../schema.js';
import { Actor, Name, Timestamp, Version } from './common.js';
import { ServiceName } from './deployments.js';
import { ImageId } from './images.js';
import { MODEL_REF_PATTERN } from './manifests.js';
import { RolloutRequest } from './rollouts.js';

/** building: the manifest and image are being made, or the image is queued or building; rolling-out: it succeeded and the service update is being made; done: the rollout started. */
const MODEL_UPDATE_STATUSES = ['building', 'rolling-out', 'done', 'failed'] as const;
type ModelUpdateStatus = (typeof MODEL_UPDATE_STATUSES)[number];
export const FINISHED_MODEL_UPDATE_STATUSES: readonly ModelUpdateStatus[] = ['done', 'failed'];

export const ModelUpdateRequest = Type.Object(
  {
    model: Type.String({ pattern: MODEL_REF_PATTERN, examples: ['iris:2', 'iris@production'], description: 'NAME:VERSION or NAME@ALIAS; the service\'s manifest must hold a model of that NAME' }),
    rollout: Type.Optional(RolloutRequest),
  },
  { additionalProperties: false },
);
export type ModelUpdateRequest = Static<typeof ModelUpdateRequest>;

export const ModelUpdateId = Type.Integer({ minimum: 1, description: 'model update number, 1, 2, …' });

export const ModelUpdate = Type.Object({
  id: ModelUpdateId,
  service: ServiceName,
  /** The version it resolved to, `NAME:VERSION` (an alias is resolved when the update starts). */
  model: Type.String(),
  /**
   * The new manifest version and its image build. The update is recorded before they are made, so
   * both are null until then: a hub stopped in between makes them at its next start; an update
   * that could not make them fails with them null.
   */
  manifest: Type.Union([Type.Object({ name: Name, version: Version }), Type.Null()]),
  image: Type.Union([ImageId, Type.Null()]),
  status: stringEnum(MODEL_UPDATE_STATUSES),
  /** The rollout of the service update, once made. */
  rollout: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
  /** As asked: the strategy (and gates) of the service update. */
  request: Type.Object({ rollout: Type.Union([RolloutRequest, Type.Null()]) }),
  createdAt: Timestamp,
  createdBy: Actor,
  updatedAt: Timestamp,
});
export type ModelUpdate = Static<typeof ModelUpdate>;
