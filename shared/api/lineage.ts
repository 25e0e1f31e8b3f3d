/**
 * A model version's lineage as one chain: dataset → training run → model → manifest → image →
 * devices running it, or that may (the portal's "which model runs where" picture, `edgeml model lineage`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../schema.js';
import { Alias, Digest, Name, Tags, Timestamp, Version } from './common.js';
import { IMAGE_STATUSES, ImageId, Image } from './images.js';
import { LineageDataset, LineageLabels, LineageParent, LineageTrainer } from './models.js';
import { ModelPlacement, UnresolvedService } from './where.js';

/** What the version's stored lineage says about how it was trained. */
export const ModelTraining = Type.Object({
  runId: Type.Union([Type.String({ description: 'the training run that produced it, as registered (`--run-id`, or the retraining run)' }), Type.Null()]),
  dataset: Type.Union([Type.String({ description: 'the dataset reference as registered (`--dataset`)' }), Type.Null()]),
  job: Type.Union([Type.String({ description: 'the retraining job' }), Type.Null()]),
  run: Type.Union([Type.Integer({ description: 'the retraining run' }), Type.Null()]),
  trainer: Type.Union([LineageTrainer, Type.Null()]),
  labels: Type.Union([LineageLabels, Type.Null()]),
  metrics: Type.Record(Type.String(), Type.Number()),
});
export type ModelTraining = Static<typeof ModelTraining>;

export const ManifestRef = Type.Object({ name: Name, version: Version });
export type ManifestRef = Static<typeof ManifestRef>;

export const LineageImage = Type.Object({
  id: ImageId,
  manifest: ManifestRef,
  status: stringEnum(IMAGE_STATUSES),
  platforms: Image.properties.platforms,
  digest: Type.Union([Digest, Type.Null()]),
});
export type LineageImage = Static<typeof LineageImage>;

export const ModelLineage = Type.Object({
  model: Type.Object({ name: Name, version: Version, digest: Digest, aliases: Type.Array(Alias), tags: Tags, createdAt: Timestamp }),
  parent: Type.Union([LineageParent, Type.Null()]),
  datasets: Type.Array(LineageDataset, { description: 'the registered datasets it was trained on (a retraining run names them)' }),
  training: Type.Union([ModelTraining, Type.Null()]),
  manifests: Type.Array(ManifestRef, { description: 'manifest versions that include this model version, by name then version' }),
  images: Type.Array(LineageImage, { description: 'image builds of those manifests, oldest first' }),
  placements: Type.Array(ModelPlacement, { description: 'as `GET /api/v1/models/{name}/where?version=V`' }),
  unresolved: Type.Array(UnresolvedService, {
    description: 'services that may run it: their serving image is one the hub cannot attribute (as `unresolved` of `/where?version=V`)',
  }),
});
export type ModelLineage = Static<typeof ModelLineage>;
