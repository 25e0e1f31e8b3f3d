import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { Image, ImageBuildRequest, ImageId, ImageList, ImageListQuery, ImageLogQuery } from '../../shared/api/images.js';
import type { BuildLogs } from '../builds/build-log.js';
import type { ImageBuilder } from '../builds/image-builder.js';
import type { ImageRepository } from '../store/store.js';
import { requestKey } from './auth.js';
import { requestActor } from './idempotency.js';

const tags = ['images'];
const params = Type.Object({ id: ImageId });

export const imageRoutes: FastifyPluginAsyncTypebox<{ builder: ImageBuilder; images: ImageRepository; logs: BuildLogs }> = async (app, deps) => {
  app.post(
    '/api/v1/images',
    {
      config: {
        scope: 'deploy',
        idempotent: {
          status: 202,
          find: async (made) => {
            const record = (await deps.images.list({})).find((r) => made(r.createdBy));
            return record && { by: record.createdBy, body: deps.builder.view(record) };
          },
        },
      },
      schema: {
        operationId: 'buildImage',
        summary: 'Build a scoring image from a manifest version (queued; follow it with GET /images/{id} and its log)',
        description:
          'The hub builds the image for each platform with docker buildx, pushes one multi-arch index to its registry, then runs each platform once and scores the manifest sample. Builds run one at a time.',
        tags,
        body: ImageBuildRequest,
        response: { 202: Image, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req, reply) => reply.code(202).send(await deps.builder.submit(req.body, requestActor(req))),
  );
  app.get(
    '/api/v1/images',
    { config: { scope: 'read' }, schema: { operationId: 'listImages', summary: 'Images, oldest first, filtered by manifest and status', tags, querystring: ImageListQuery, response: { 200: ImageList } } },
    async (req) => ({ images: (await deps.images.list(req.query)).map((r) => deps.builder.view(r)) }),
  );
  app.get(
    '/api/v1/images/:id',
    { config: { scope: 'read' }, schema: { operationId: 'getImage', summary: 'One image: status, digests, smoke checks, live progress', tags, params, response: { 200: Image, 404: ErrorBody } } },
    async (req) => deps.builder.get(req.params.id),
  );
  app.get(
    '/api/v1/images/:id/log',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getImageBuildLog',
        summary: 'The build log as text; with follow=true it streams until the build finishes',
        tags,
        params,
        querystring: ImageLogQuery,
        response: { 200: { content: { 'text/plain': { schema: Type.String() } } }, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const image = await deps.builder.get(req.params.id);
      const log = await deps.logs.read(req.params.id, { follow: req.query.follow ?? false, pending: image.status === 'queued' });
      // A follower that hangs up must not keep the stream (and its listener) alive.
      req.raw.once('close', () => log.destroy());
      // The schema documents text; fastify sends a stream as it comes (the cast is for the typings only).
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(log as unknown as string);
    },
  );
  app.post(
    '/api/v1/images/:id/cancel',
    {
      config: { scope: 'deploy' },
      schema: { operationId: 'cancelImageBuild', summary: 'Cancel a queued or running build', tags, params, response: { 200: Image, 404: ErrorBody, 409: ErrorBody } },
    },
    async (req) => {
      const image = await deps.builder.cancel(req.params.id);
      req.log.info({ image: image.id, by: requestKey(req).id }, 'image build cancel requested');
      return image;
    },
  );
};
