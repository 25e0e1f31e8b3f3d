import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, Name } from '../../shared/api/common.js';
import { TrainerCreate, TrainerListQuery, TrainerLogQuery, TrainerVersion, TrainerVersionList } from '../../shared/api/trainers.js';
import type { BuildLogs } from '../builds/build-log.js';
import type { TrainerRepository } from '../store/store.js';
import { trainerKey } from '../training/trainer-builder.js';
import type { TrainerRegistry } from '../training/trainer-registry.js';
import { requestKey } from './auth.js';
import { requestActor } from './idempotency.js';
import { selectorFromRef } from './version-ref.js';

const tags = ['trainers'];
/** Training scripts and dependency lists are text; a few MB is generous. */
const TRAINER_BODY_LIMIT = 8 * 1024 * 1024;
const versionParams = Type.Object({ name: Name, ref: Type.String({ pattern: '^(?:[1-9][0-9]{0,8}|latest)$', examples: ['2', 'latest'] }) });

export interface TrainerRoutesOptions {
  registry: TrainerRegistry;
  trainers: TrainerRepository;
  logs: BuildLogs;
}

export const trainerRoutes: FastifyPluginAsyncTypebox<TrainerRoutesOptions> = async (app, deps) => {
  app.post(
    '/api/v1/trainers/:name/versions',
    {
      bodyLimit: TRAINER_BODY_LIMIT,
      config: {
        scope: 'deploy',
        idempotent: {
          status: 201,
          find: async (made) => {
            const version = (await deps.trainers.list({})).find((v) => made(v.createdBy));
            return version && { by: version.createdBy, body: await deps.registry.resolve(version.name, { version: version.version }) };
          },
        },
      },
      schema: {
        operationId: 'registerTrainerVersion',
        summary: 'Create a new trainer version: a training recipe, built into an image for the hub platform',
        description:
          'The recipe (runtime, training script, dependency file, env) is stored as NAME:N and its image is queued at once: built with docker buildx for the hub platform only and pushed to REGISTRY/PREFIX/trainer-NAME. Follow it with GET …/versions/{v} (image.status) and …/log.',
        tags,
        params: Type.Object({ name: Name }),
        body: TrainerCreate,
        response: { 201: TrainerVersion, 400: ErrorBody, 413: ErrorBody },
      },
    },
    async (req, reply) => {
      const trainer = await deps.registry.create(req.params.name, req.body, requestActor(req));
      req.log.info({ trainer: trainer.name, version: trainer.version, digest: trainer.digest, by: requestKey(req).id }, 'trainer version created');
      return reply.code(201).send(trainer);
    },
  );
  app.get(
    '/api/v1/trainers',
    { config: { scope: 'read' }, schema: { operationId: 'listTrainers', summary: 'Trainer versions, optionally of one name', tags, querystring: TrainerListQuery, response: { 200: TrainerVersionList } } },
    async (req) => ({ versions: await deps.registry.list(req.query.name) }),
  );
  app.get(
    '/api/v1/trainers/:name/versions',
    {
      config: { scope: 'read' },
      schema: { operationId: 'listTrainerVersions', summary: "One trainer's versions", tags, params: Type.Object({ name: Name }), response: { 200: TrainerVersionList, 404: ErrorBody } },
    },
    async (req) => {
      // A name with no version is a 404 like any unknown trainer.
      await deps.registry.resolve(req.params.name, { latest: true });
      return { versions: await deps.registry.list(req.params.name) };
    },
  );
  app.get(
    '/api/v1/trainers/:name/versions/:ref',
    {
      config: { scope: 'read' },
      schema: { operationId: 'getTrainerVersion', summary: 'One trainer version (`3` or `latest`) with its image state', tags, params: versionParams, response: { 200: TrainerVersion, 404: ErrorBody } },
    },
    async (req) => deps.registry.resolve(req.params.name, selectorFromRef(req.params.ref)),
  );
  app.get(
    '/api/v1/trainers/:name/versions/:ref/log',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getTrainerLog',
        summary: "The trainer image's build log as text; with follow=true it streams until the build finishes",
        tags,
        params: versionParams,
        querystring: TrainerLogQuery,
        response: { 200: { content: { 'text/plain': { schema: Type.String() } } }, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const trainer = await deps.registry.resolve(req.params.name, selectorFromRef(req.params.ref));
      const log = await deps.logs.read(trainerKey(trainer.name, trainer.version), { follow: req.query.follow ?? false, pending: trainer.image.status === 'queued' });
      // A follower that hangs up must not keep the stream (and its listener) alive.
      req.raw.once('close', () => log.destroy());
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(log as unknown as string);
    },
  );
};
