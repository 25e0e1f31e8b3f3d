/**
 * Datasets over HTTP: a service's labelled data as an NDJSON stream (rows go out as they are
 * joined; nothing is buffered whole), and base datasets.
 */
import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, Name } from '../../shared/api/common.js';
import {
  DATASET_UPLOAD_TYPE,
  DatasetList,
  DatasetUploadQuery,
  DatasetVersion,
  DatasetVersionList,
  DatasetVersionRef,
  LabelledExportQuery,
  type DatasetSummary,
} from '../../shared/api/datasets.js';
import { ServiceName } from '../../shared/api/deployments.js';
import { NDJSON } from '../../shared/api/telemetry.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { formatBytes } from '../../shared/size.js';
import type { DatasetRegistry } from '../datasets/dataset-registry.js';
import { exportLine, type LabelledData, type LabelledRow } from '../datasets/labelled-data.js';
import type { BlobStore } from '../store/blob-store.js';
import type { DatasetRepository } from '../store/store.js';
import { requestKey } from './auth.js';
import { requestActor } from './idempotency.js';
import { timeBound } from './time-bounds.js';
import { uploadBody } from './upload-body.js';

export interface DatasetRoutesOptions {
  labelled: LabelledData;
  registry: DatasetRegistry;
  datasets: DatasetRepository;
  blobs: Pick<BlobStore, 'openRead'>;
  maxUploadBytes: number;
  /** A client that sends nothing this long fails its upload with 408. */
  uploadIdleTimeoutMs: number;
  clock: Clock;
}

const tags = ['datasets'];

/** `NAME` matches every version of the model, `NAME:V` that one. */
function modelMatch(filter: string | undefined): (row: LabelledRow) => boolean {
  if (filter === undefined) return () => true;
  return filter.includes(':') ? (row) => row.model === filter : (row) => row.model?.startsWith(`${filter}:`) === true;
}

async function* exportLines(rows: AsyncIterable<LabelledRow>, match: (row: LabelledRow) => boolean): AsyncGenerator<string> {
  for await (const row of rows) {
    if (!match(row)) continue;
    yield `${JSON.stringify(exportLine(row))}\n`;
  }
}

const versionOf = (ref: string): number | 'latest' => (ref === 'latest' ? 'latest' : Number(ref));

export const datasetRoutes: FastifyPluginAsyncTypebox<DatasetRoutesOptions> = async (app, o) => {
  // Uploads stream straight from the socket into the blob store: the parser leaves the body unread.
  app.addContentTypeParser(DATASET_UPLOAD_TYPE, (_req, _payload, done) => done(null));

  app.post(
    '/api/v1/datasets/:name/versions',
    {
      config: {
        scope: 'deploy',
        docBody: { content: { [DATASET_UPLOAD_TYPE]: { schema: { type: 'string', description: 'JSONL: one {"input": …, "label": …} object per line' } } } },
        idempotent: {
          status: 201,
          find: async (made) => {
            const version = (await o.datasets.list({})).find((v) => made(v.createdBy));
            return version && { by: version.createdBy, body: version };
          },
        },
      },
      schema: {
        operationId: 'registerDatasetVersion',
        summary: 'Register a new version of a base dataset (a JSONL file of {"input", "label"} rows)',
        description:
          'The body is the file, `application/x-ndjson`. Every line must be a JSON object with `input` and a non-null `label` (blank lines are skipped); the first bad line is refused with its number and nothing is stored. The version is the next number for this name, immutable; `digest` is the sha256 of the file.',
        tags,
        params: Type.Object({ name: Name }),
        querystring: DatasetUploadQuery,
        response: { 201: DatasetVersion, 400: ErrorBody, 413: ErrorBody, 415: ErrorBody },
      },
    },
    async (req, reply) => {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== DATASET_UPLOAD_TYPE) {
        throw new EdgemlError(ErrorCodes.HUB_UNSUPPORTED_MEDIA_TYPE, `content-type ${JSON.stringify(type || '(none)')}: upload the JSONL file as ${DATASET_UPLOAD_TYPE}`, { httpStatus: 415 });
      }
      const length = Number(req.headers['content-length']);
      if (Number.isFinite(length) && length > o.maxUploadBytes) {
        throw new EdgemlError(ErrorCodes.HUB_PAYLOAD_TOO_LARGE, `upload of ${formatBytes(length)} is larger than the limit of ${formatBytes(o.maxUploadBytes)}`, { httpStatus: 413 });
      }
      const version = await o.registry.register({ name: req.params.name, description: req.query.description, source: uploadBody(req.raw, o.uploadIdleTimeoutMs), actor: requestActor(req) });
      req.log.info({ dataset: version.name, version: version.version, digest: version.digest, rows: version.rows, by: requestKey(req).id }, 'dataset version registered');
      return reply.code(201).send(version);
    },
  );

  app.get(
    '/api/v1/datasets',
    { config: { scope: 'read' }, schema: { operationId: 'listDatasets', summary: 'Base datasets, each with its latest version', tags, response: { 200: DatasetList } } },
    async () => {
      const byName = new Map<string, DatasetSummary>();
      for (const v of await o.datasets.list({})) byName.set(v.name, { name: v.name, versions: (byName.get(v.name)?.versions ?? 0) + 1, latest: v });
      return { datasets: [...byName.values()] };
    },
  );

  app.get(
    '/api/v1/datasets/:name/versions',
    {
      config: { scope: 'read' },
      schema: { operationId: 'listDatasetVersions', summary: 'The versions of a base dataset', tags, params: Type.Object({ name: Name }), response: { 200: DatasetVersionList, 404: ErrorBody } },
    },
    async (req) => {
      const versions = await o.datasets.list({ name: req.params.name });
      if (versions.length === 0) throw new EdgemlError(ErrorCodes.HUB_DATASET_NOT_FOUND, `dataset ${req.params.name} not found`, { httpStatus: 404 });
      return { versions };
    },
  );

  const versionParams = Type.Object({ name: Name, version: DatasetVersionRef });

  app.get(
    '/api/v1/datasets/:name/versions/:version',
    {
      config: { scope: 'read' },
      schema: { operationId: 'getDatasetVersion', summary: 'One base dataset version (`3` or `latest`)', tags, params: versionParams, response: { 200: DatasetVersion, 404: ErrorBody } },
    },
    async (req) => o.registry.resolve(req.params.name, versionOf(req.params.version)),
  );

  app.get(
    '/api/v1/datasets/:name/versions/:version/rows',
    {
      // Not `read`: the rows are users' data, like captures.
      config: { scope: 'deploy' },
      schema: {
        operationId: 'getDatasetRows',
        summary: 'The rows of a base dataset version: the registered JSONL file, as it was uploaded',
        tags,
        params: versionParams,
        produces: [NDJSON],
        response: { 200: { content: { [NDJSON]: { schema: Type.String({ description: 'one {"input", "label"} object per line' }) } } }, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const version = await o.registry.resolve(req.params.name, versionOf(req.params.version));
      reply.header('x-edgeml-digest', version.digest).header('content-length', version.size);
      return reply.type(NDJSON).send(o.blobs.openRead(version.digest) as unknown as string);
    },
  );

  app.get(
    '/api/v1/datasets/export/:service',
    {
      // Not `read`: these are users' inputs, answers and labels (like capture export).
      config: { scope: 'deploy' },
      schema: {
        operationId: 'exportDataset',
        summary: "Export a service's labelled data, one JSON row per line (NDJSON): captured requests joined with their labels, and inline examples",
        description:
          'Each line is `{"requestId","time","device","model","input","output","label"}`. A captured request carries the latest label sent for it (null when none); an inline example has `output` null. Captures come day by day, then inline examples.',
        tags,
        params: Type.Object({ service: ServiceName }),
        querystring: LabelledExportQuery,
        produces: [NDJSON],
        response: { 200: { content: { [NDJSON]: { schema: Type.String({ description: 'one row per line' }) } } }, 400: ErrorBody },
      },
    },
    async (req, reply) => {
      const now = o.clock.now();
      const sinceMs = req.query.since === undefined ? undefined : timeBound('since', req.query.since, now);
      const untilMs = req.query.until === undefined ? undefined : timeBound('until', req.query.until, now);
      const since = sinceMs === undefined ? undefined : new Date(sinceMs).toISOString();
      const until = untilMs === undefined ? undefined : new Date(untilMs).toISOString();
      if (sinceMs !== undefined && untilMs !== undefined && untilMs <= sinceMs) throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `until must be after since (${since})`, { httpStatus: 400 });
      const rows = o.labelled.rows({ service: req.params.service, ...(since && { since }), ...(until && { until }), ...(req.query.labelled !== undefined && { labelled: req.query.labelled }) });
      const stream = Readable.from(exportLines(rows, modelMatch(req.query.model)));
      // A client that hangs up mid-export stops the reading.
      reply.raw.once('close', () => stream.destroy());
      // The schema documents text; fastify sends a stream as it comes (the cast is for the typings only).
      return reply.type(NDJSON).send(stream as unknown as string);
    },
  );
};
