import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, Name } from '../../shared/api/common.js';
import { ManifestCreate, ManifestListQuery, ManifestVersion, ManifestVersionList } from '../../shared/api/manifests.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { ManifestRegistry } from '../registry/manifest-registry.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ManifestRepository } from '../store/store.js';
import { requestKey } from './auth.js';
import { requestActor } from './idempotency.js';
import { selectorFromRef } from './version-ref.js';

const tags = ['manifests'];
/** Scoring scripts, schemas and dependency lists are text; a few MB is generous. */
const MANIFEST_BODY_LIMIT = 8 * 1024 * 1024;

/** `3` or `latest`. */
const VersionRef = Type.String({ pattern: '^(?:[1-9][0-9]{0,8}|latest)$', examples: ['2', 'latest'] });

/** `blobs`: serves the scoring file and dependency list (`edgeml serve --manifest` without an image). */
export const manifestRoutes: FastifyPluginAsyncTypebox<{ registry: ManifestRegistry; manifests: ManifestRepository; blobs: BlobStore }> = async (app, deps) => {
  app.post(
    '/api/v1/manifests/:name/versions',
    {
      bodyLimit: MANIFEST_BODY_LIMIT,
      config: {
        scope: 'deploy',
        idempotent: {
          status: 201,
          find: async (made) => {
            const version = (await deps.manifests.list({})).find((v) => made(v.createdBy));
            return version && { by: version.createdBy, body: version };
          },
        },
      },
      schema: {
        operationId: 'registerManifestVersion',
        summary: 'Create a new manifest version: how a model is served',
        description: 'Model references (`NAME:VERSION` or `NAME@ALIAS`) are resolved and pinned by digest. The schema document is checked, and its sample must match its input schema.',
        tags,
        params: Type.Object({ name: Name }),
        body: ManifestCreate,
        response: { 201: ManifestVersion, 400: ErrorBody, 409: ErrorBody, 413: ErrorBody },
      },
    },
    async (req, reply) => {
      const manifest = await deps.registry.create(req.params.name, req.body, requestActor(req));
      req.log.info({ manifest: manifest.name, version: manifest.version, digest: manifest.digest, by: requestKey(req).id }, 'manifest version created');
      return reply.code(201).send(manifest);
    },
  );
  app.get(
    '/api/v1/manifests',
    { config: { scope: 'read' }, schema: { operationId: 'listManifestVersions', summary: 'Manifest versions, optionally of one name', tags, querystring: ManifestListQuery, response: { 200: ManifestVersionList } } },
    async (req) => ({ versions: await deps.manifests.list({ name: req.query.name }) }),
  );
  app.get(
    '/api/v1/manifests/:name/versions/:ref',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getManifestVersion',
        summary: 'One manifest version (`3` or `latest`)',
        tags,
        params: Type.Object({ name: Name, ref: VersionRef }),
        response: { 200: ManifestVersion, 404: ErrorBody },
      },
    },
    async (req) => deps.manifests.resolve(req.params.name, selectorFromRef(req.params.ref)),
  );
  app.get(
    '/api/v1/manifests/:name/versions/:ref/files/:file',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getManifestFile',
        summary: "Download a manifest version's scoring file or dependency list",
        description: '`score`: the scoring script; `deps`: package.json or requirements.txt (404 when the manifest has none). `x-edgeml-digest` carries the digest.',
        tags,
        params: Type.Object({ name: Name, ref: VersionRef, file: Type.Union([Type.Literal('score'), Type.Literal('deps')]) }),
        response: { 200: { description: 'the file (UTF-8 text)', content: { 'text/plain': { schema: { type: 'string' } } } }, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const version = await deps.manifests.resolve(req.params.name, selectorFromRef(req.params.ref));
      const file = req.params.file === 'score' ? version.score : version.deps;
      if (!file) throw new EdgemlError(ErrorCodes.HUB_NOT_FOUND, `${version.name}:${version.version} has no dependency file`, { httpStatus: 404 });
      void reply
        .header('content-type', 'text/plain; charset=utf-8')
        .header('content-length', file.size)
        .header('content-disposition', `attachment; filename="${file.filename}"`)
        .header('x-edgeml-digest', file.digest);
      return reply.send(deps.blobs.openRead(file.digest));
    },
  );
};
