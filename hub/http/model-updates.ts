import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { ServiceName } from '../../shared/api/deployments.js';
import { ModelUpdate, ModelUpdateId, ModelUpdateRequest } from '../../shared/api/model-updates.js';
import type { ModelUpdates } from '../fleet/model-update.js';
import { requestActor } from './idempotency.js';

const tags = ['deployments'];

export const modelUpdateRoutes: FastifyPluginAsyncTypebox<{ modelUpdates: ModelUpdates }> = async (app, { modelUpdates }) => {
  app.post(
    '/api/v1/deployments/:service/model',
    {
      config: {
        scope: 'deploy',
        idempotent: {
          status: 202,
          find: async (made) => {
            const found = await modelUpdates.madeBy(made);
            return found && { by: found.createdBy, body: found };
          },
        },
      },
      schema: {
        operationId: 'updateDeploymentModel',
        summary: "Update a service to another version of one of its models: new manifest version, image build, rollout; its URL and key stay",
        description:
          "The manifest of the image the service runs, with the model of the same name replaced by `model` (NAME:VERSION, or NAME@ALIAS resolved now), becomes a new manifest version; it is built for the current image's platforms and, once the build succeeded, the service is updated to it with `rollout` (a new revision). Answers once the update is recorded and its build queued (`status` building); follow it with GET /api/v1/model-updates/{id} and the image's log. 400 when the rollout request cannot be used (checked before anything is made); 409 when the service runs an image this hub did not build, when its manifest has no model of that name, or when it already runs that version.",
        tags,
        params: Type.Object({ service: ServiceName }),
        body: ModelUpdateRequest,
        response: { 202: ModelUpdate, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => reply.code(202).send(await modelUpdates.start(req.params.service, req.body.model, req.body.rollout, requestActor(req))),
  );
  app.get(
    '/api/v1/model-updates/:id',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getModelUpdate',
        summary: 'One model update: building, rolling-out, done (its rollout started) or failed',
        tags,
        params: Type.Object({ id: ModelUpdateId }),
        response: { 200: ModelUpdate, 404: ErrorBody },
      },
    },
    async (req) => modelUpdates.get(req.params.id),
  );
};
