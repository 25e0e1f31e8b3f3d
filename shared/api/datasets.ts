/**
 * Datasets: a service's labelled data exported from the telemetry archive, and base datasets
 * (immutable, content-addressed JSONL versions, like models). The hub validates requests with
 * these schemas and they produce the OpenAPI document.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Actor, Digest, Name, Timestamp, Version } from './common.js';
import { MODEL_FILTER_PATTERN, TIME_BOUND_PATTERN } from './telemetry.js';

const TimeBound = (description: string) => Type.String({ pattern: TIME_BOUND_PATTERN, examples: ['7d', '2024-05-01T00:00:00Z'], description });

/** Query of `GET /api/v1/datasets/export/{service}`. */
export const LabelledExportQuery = Type.Object(
  {
    since: Type.Optional(TimeBound('requests at or after this (a duration back from now, or a date-time); default: all the archive holds')),
    until: Type.Optional(TimeBound('requests before this; default now')),
    labelled: Type.Optional(Type.Boolean({ description: 'true: only labelled rows; false: only unlabelled ones; absent: both' })),
    model: Type.Optional(Type.String({ pattern: MODEL_FILTER_PATTERN, examples: ['iris', 'iris:3'], description: 'only rows of this model (first model of the service), or this version of it' })),
  },
  { additionalProperties: false },
);
export type LabelledExportQuery = Static<typeof LabelledExportQuery>;

/** One line of a labelled export; also the line format trainers read. */
export const LabelledExportLine = Type.Object({
  requestId: Type.String(),
  time: Timestamp,
  device: Type.Union([Type.String(), Type.Null()], { description: "null for a base dataset's row (in a trainer's files)" }),
  model: Type.Union([Type.String({ description: 'NAME:VERSION' }), Type.Null()]),
  input: Type.Unknown(),
  output: Type.Unknown({ description: 'the answer; null for an inline example or an error answer' }),
  label: Type.Unknown({ description: 'null when unlabelled' }),
});
export type LabelledExportLine = Static<typeof LabelledExportLine>;

/** `application/x-ndjson`: the body of `POST /api/v1/datasets/{name}/versions`. */
export const DATASET_UPLOAD_TYPE = 'application/x-ndjson';

export const DatasetUploadQuery = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type DatasetUploadQuery = Static<typeof DatasetUploadQuery>;

export const DatasetVersion = Type.Object({
  name: Name,
  version: Version,
  digest: Digest,
  size: Type.Integer({ minimum: 0, description: 'bytes of the JSONL file' }),
  rows: Type.Integer({ minimum: 0, description: 'lines, each a JSON object with input and label' }),
  description: Type.String(),
  createdAt: Timestamp,
  createdBy: Actor,
});
export type DatasetVersion = Static<typeof DatasetVersion>;

export const DatasetSummary = Type.Object({
  name: Name,
  versions: Type.Integer({ minimum: 1 }),
  latest: DatasetVersion,
});
export type DatasetSummary = Static<typeof DatasetSummary>;

export const DatasetList = Type.Object({ datasets: Type.Array(DatasetSummary) });
export type DatasetList = Static<typeof DatasetList>;

export const DatasetVersionList = Type.Object({ versions: Type.Array(DatasetVersion) });
export type DatasetVersionList = Static<typeof DatasetVersionList>;

/** A version in a path: `3` or `latest`. */
const DATASET_VERSION_REF_PATTERN = '^(?:[1-9][0-9]{0,8}|latest)$';
export const DatasetVersionRef = Type.String({ pattern: DATASET_VERSION_REF_PATTERN, examples: ['1', 'latest'] });
