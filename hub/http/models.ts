import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Alias, ErrorBody, Name, Version, VersionRef } from '../../shared/api/common.js';
import { AliasResult, AliasSet, MODEL_UPLOAD_TYPES, ModelListQuery, ModelSummary, ModelUploadQuery, ModelVersion, ModelVersionList } from '../../shared/api/models.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { formatBytes } from '../../shared/size.js';
import { keyValues } from '../registry/key-values.js';
import type { ModelKind, ModelRegistry } from '../registry/model-registry.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ModelRepository } from '../store/store.js';
import { requestKey } from './auth.js';
import { requestActor } from './idempotency.js';
import { uploadBody } from './upload-body.js';
import { selectorFromRef } from './version-ref.js';

export interface ModelRouteDeps {
  registry: ModelRegistry;
  models: ModelRepository;
  blobs: BlobStore;
  maxUploadBytes: number;
  uploadIdleTimeoutMs: number;
}

const tags = ['models'];
const binary = { type: 'string', format: 'binary' };
const uploadTypes = Object.values(MODEL_UPLOAD_TYPES);

function uploadKind(contentType: string | undefined): ModelKind {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === MODEL_UPLOAD_TYPES.file) return 'file';
  if (type === MODEL_UPLOAD_TYPES.directory) return 'directory';
  throw new EdgemlError(
    ErrorCodes.HUB_UNSUPPORTED_MEDIA_TYPE,
    `content-type ${JSON.stringify(type || '(none)')}: upload a file as ${MODEL_UPLOAD_TYPES.file} or a directory as ${MODEL_UPLOAD_TYPES.directory}`,
    { httpStatus: 415 },
  );
}

export const modelRoutes: FastifyPluginAsyncTypebox<ModelRouteDeps> = async (app, deps) => {
  // Uploads stream straight from the socket into the blob store: the parser leaves the body unread.
  app.addContentTypeParser(uploadTypes, (_req, _payload, done) => done(null));

  app.post(
    '/api/v1/models/:name/versions',
    {
      config: {
        scope: 'deploy',
        docBody: { content: Object.fromEntries(uploadTypes.map((t) => [t, { schema: binary }])) },
        idempotent: {
          status: 201,
          find: async (made) => {
            const version = (await deps.models.list({})).find((v) => made(v.createdBy));
            return version && { by: version.createdBy, body: version };
          },
        },
      },
      schema: {
        operationId: 'registerModelVersion',
        summary: 'Register a new version of a model (upload a file, or a directory as a tar stream)',
        description:
          'The body is the model: `application/octet-stream` for one file (give `filename`), `application/x-tar` for a directory (as `edgeml model register` packs it; entries must stay inside the directory). The version is the next number for this name; `digest` is the sha256 of the body.',
        tags,
        params: Type.Object({ name: Name }),
        querystring: ModelUploadQuery,
        response: { 201: ModelVersion, 400: ErrorBody, 413: ErrorBody, 415: ErrorBody },
      },
    },
    async (req, reply) => {
      const kind = uploadKind(req.headers['content-type']);
      const length = Number(req.headers['content-length']);
      if (Number.isFinite(length) && length > deps.maxUploadBytes) {
        throw new EdgemlError(ErrorCodes.HUB_PAYLOAD_TOO_LARGE, `upload of ${formatBytes(length)} is larger than the limit of ${formatBytes(deps.maxUploadBytes)}`, {
          httpStatus: 413,
        });
      }
      const version = await deps.registry.register({ name: req.params.name, kind, meta: req.query, source: uploadBody(req.raw, deps.uploadIdleTimeoutMs), actor: requestActor(req) });
      req.log.info({ model: version.name, version: version.version, digest: version.digest, size: version.size, by: requestKey(req).id }, 'model version registered');
      return reply.code(201).send(version);
    },
  );

  app.get(
    '/api/v1/models',
    { config: { scope: 'read' }, schema: { operationId: 'listModelVersions', summary: 'Model versions, filtered by name and tags', tags, querystring: ModelListQuery, response: { 200: ModelVersionList } } },
    async (req) => ({ versions: await deps.models.list({ name: req.query.name, tags: keyValues('tag', req.query.tag) }) }),
  );

  app.get(
    '/api/v1/models/:name',
    {
      config: { scope: 'read' },
      schema: { operationId: 'getModel', summary: 'A model: its versions and aliases', tags, params: Type.Object({ name: Name }), response: { 200: ModelSummary, 404: ErrorBody } },
    },
    async (req) => {
      const summary = await deps.models.summary(req.params.name);
      if (!summary) throw new EdgemlError(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${req.params.name} not found`, { httpStatus: 404 });
      return summary;
    },
  );

  const versionParams = Type.Object({ name: Name, ref: VersionRef });

  app.get(
    '/api/v1/models/:name/versions/:ref',
    {
      config: { scope: 'read' },
      schema: { operationId: 'getModelVersion', summary: 'One model version (`3`, `latest` or `@ALIAS`)', tags, params: versionParams, response: { 200: ModelVersion, 404: ErrorBody } },
    },
    async (req) => deps.models.resolve(req.params.name, selectorFromRef(req.params.ref)),
  );

  // GET and HEAD by hand: fastify's automatic HEAD would run the GET handler and drain the blob.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/api/v1/models/:name/versions/:ref/content',
    config: { scope: 'read' },
    schema: {
      operationId: 'getModelContent',
      summary: 'Download the bytes of a model version',
      description: 'The uploaded bytes: the file, or the tar stream of a directory. `x-edgeml-digest` carries the digest to verify against.',
      tags,
      params: versionParams,
      response: { 200: { description: 'the model', content: Object.fromEntries(uploadTypes.map((t) => [t, { schema: binary }])) }, 404: ErrorBody },
    },
    handler: async (req, reply) => {
      const version = await deps.models.resolve(req.params.name, selectorFromRef(req.params.ref));
      const filename = version.kind === 'file' ? version.files[0]!.path : `${version.name}-${version.version}.tar`;
      void reply
        .header('content-type', MODEL_UPLOAD_TYPES[version.kind])
        .header('content-length', version.size)
        .header('content-disposition', `attachment; filename="${filename}"`)
        .header('etag', `"${version.digest}"`)
        .header('x-edgeml-digest', version.digest);
      return reply.send(req.method === 'HEAD' ? undefined : deps.blobs.openRead(version.digest));
    },
  });

  app.delete(
    // `:ref` like the GET beside it (OpenAPI forbids paths that differ only in a parameter's name), but only a number.
    '/api/v1/models/:name/versions/:ref',
    {
      config: { scope: 'deploy' },
      schema: {
        operationId: 'deleteModelVersion',
        summary: 'Delete a model version that nothing references',
        tags,
        params: Type.Object({ name: Name, ref: Version }),
        response: { 204: Type.Null(), 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      await deps.models.deleteVersion(req.params.name, req.params.ref);
      req.log.info({ model: req.params.name, version: req.params.ref, by: requestKey(req).id }, 'model version deleted');
      return reply.code(204).send(null);
    },
  );

  const aliasParams = Type.Object({ name: Name, alias: Alias });

  app.put(
    '/api/v1/models/:name/aliases/:alias',
    {
      config: { scope: 'deploy' },
      schema: { operationId: 'setModelAlias', summary: 'Point an alias at a version (creates or moves it)', tags, params: aliasParams, body: AliasSet, response: { 200: AliasResult, 404: ErrorBody } },
    },
    async (req) => {
      const { previous } = await deps.models.setAlias(req.params.name, req.params.alias, req.body.version);
      req.log.info({ model: req.params.name, alias: req.params.alias, version: req.body.version, previous, by: requestKey(req).id }, 'model alias set');
      return { name: req.params.name, alias: req.params.alias, version: req.body.version, previous };
    },
  );

  app.delete(
    '/api/v1/models/:name/aliases/:alias',
    { config: { scope: 'deploy' }, schema: { operationId: 'deleteModelAlias', summary: 'Remove an alias', tags, params: aliasParams, response: { 204: Type.Null(), 404: ErrorBody } } },
    async (req, reply) => {
      await deps.models.deleteAlias(req.params.name, req.params.alias);
      return reply.code(204).send(null);
    },
  );
};
