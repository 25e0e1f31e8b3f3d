import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../schema.js';
import { Actor, Alias, Digest, Name, Tags, Timestamp, Version } from './common.js';

/** `application/octet-stream` uploads one file; `application/x-tar` a directory packed by the CLI. */
export const MODEL_UPLOAD_TYPES = { file: 'application/octet-stream', directory: 'application/x-tar' } as const;

export const FILENAME_PATTERN = '^(?!\\.{1,2}$)[A-Za-z0-9._+-]{1,255}$';
export const FRAMEWORK_PATTERN = '^[a-z0-9][a-z0-9._+-]{0,31}$';
export const KEY_VALUE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}=';

/** Query of `POST /api/v1/models/{name}/versions`; the body is the raw file or tar stream. */
export const ModelUploadQuery = Type.Object(
  {
    filename: Type.Optional(
      Type.String({ pattern: FILENAME_PATTERN, examples: ['model.onnx'], description: 'base name of an uploaded file (required for a file upload)' }),
    ),
    framework: Type.Optional(Type.String({ pattern: FRAMEWORK_PATTERN, examples: ['onnx', 'tflite', 'pytorch'], default: 'custom' })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    tag: Type.Optional(Type.Array(Type.String({ pattern: KEY_VALUE_PATTERN, examples: ['team=vision'], maxLength: 320 }), { description: 'KEY=VALUE; repeat for several' })),
    runId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'training run that produced the model' })),
    dataset: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'dataset reference (URI, name@version, …)' })),
    metric: Type.Optional(
      Type.Array(Type.String({ pattern: `${KEY_VALUE_PATTERN}[-+]?[0-9.eE+-]+$`, examples: ['accuracy=0.93'], maxLength: 128 }), {
        description: 'KEY=NUMBER; repeat for several',
      }),
    ),
    digest: Type.Optional(Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description: 'if given, the upload must hash to this digest' })),
  },
  { additionalProperties: false },
);
export type ModelUploadQuery = Static<typeof ModelUploadQuery>;

export const ModelFile = Type.Object({
  path: Type.String({ description: 'path inside the model (a file model has one entry: its file name)' }),
  size: Type.Integer({ minimum: 0 }),
  digest: Digest,
});
export type ModelFile = Static<typeof ModelFile>;

export const LineageParent = Type.Object({ name: Type.String(), version: Type.Integer() });
export const LineageDataset = Type.Object({ name: Type.String(), version: Type.Integer(), digest: Type.String() });
export const LineageLabels = Type.Object({ since: Type.Union([Type.String(), Type.Null()]), until: Type.String(), count: Type.Integer() }, { description: 'the feedback window trained on' });
export const LineageTrainer = Type.Object({ name: Type.String(), version: Type.Integer(), image: Type.String({ description: 'repository@digest' }) });

/** Where a version came from. The optional fields are set on a candidate a retraining run registered. */
export const Lineage = Type.Object({
  runId: Type.Union([Type.String(), Type.Null()]),
  dataset: Type.Union([Type.String(), Type.Null()]),
  /** A retrained candidate: its value under the metric's name, the current model's under `current.<metric>`. */
  metrics: Type.Record(Type.String(), Type.Number()),
  parent: Type.Optional(Type.Union([LineageParent, Type.Null()], { description: 'the model version it was trained from' })),
  datasets: Type.Optional(Type.Array(LineageDataset)),
  labels: Type.Optional(LineageLabels),
  trainer: Type.Optional(LineageTrainer),
  job: Type.Optional(Type.String({ description: 'the retraining job' })),
  run: Type.Optional(Type.Integer({ description: 'the retraining run' })),
});
export type Lineage = Static<typeof Lineage>;

export const ModelVersion = Type.Object({
  name: Name,
  version: Version,
  kind: stringEnum(['file', 'directory']),
  digest: Type.String({ description: 'sha256 of the uploaded bytes: the file, or the tar stream of a directory' }),
  size: Type.Integer({ minimum: 0, description: 'bytes uploaded' }),
  files: Type.Array(ModelFile),
  framework: Type.String(),
  description: Type.String(),
  tags: Tags,
  lineage: Lineage,
  aliases: Type.Array(Alias, { description: 'aliases pointing at this version now' }),
  createdAt: Timestamp,
  createdBy: Actor,
});
export type ModelVersion = Static<typeof ModelVersion>;

export const ModelVersionList = Type.Object({ versions: Type.Array(ModelVersion) });
export type ModelVersionList = Static<typeof ModelVersionList>;

export const ModelListQuery = Type.Object(
  {
    name: Type.Optional(Name),
    tag: Type.Optional(Type.Array(Type.String({ pattern: KEY_VALUE_PATTERN }), { description: 'KEY=VALUE; versions must carry every tag given' })),
  },
  { additionalProperties: false },
);

export const ModelSummary = Type.Object({
  name: Name,
  latest: Version,
  aliases: Type.Record(Type.String(), Version),
  versions: Type.Array(ModelVersion),
});
export type ModelSummary = Static<typeof ModelSummary>;

export const AliasSet = Type.Object({ version: Version }, { additionalProperties: false });
export const AliasResult = Type.Object({ name: Name, alias: Alias, version: Version, previous: Type.Union([Version, Type.Null()]) });
export type AliasResult = Static<typeof AliasResult>;
