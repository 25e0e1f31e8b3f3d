/**
 * Which model versions run where: by model (`edgeml model where`) and by device (`edgeml device show`).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, Name } from '../../shared/api/common.js';
import { DeviceId } from '../../shared/api/devices.js';
import { DeviceServices, ModelWhere, ModelWhereQuery } from '../../shared/api/where.js';
import type { ModelLocator } from '../fleet/model-locator.js';

const HOW =
  'From what devices report: a service runs the image of its serving revision, and the hub build with that digest names its model versions. An image built elsewhere names none.';

export const whereRoutes: FastifyPluginAsyncTypebox<{ locator: ModelLocator }> = async (app, { locator }) => {
  app.get(
    '/api/v1/models/:name/where',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getModelWhere',
        summary: 'The devices and services running a model (any version, or `version`)',
        description: `${HOW} \`unresolved\` lists services serving an older revision whose image no device reports any more: the hub cannot tell what they run.`,
        tags: ['models'],
        params: Type.Object({ name: Name }),
        querystring: ModelWhereQuery,
        response: { 200: ModelWhere, 404: ErrorBody },
      },
    },
    async (req) => locator.where(req.params.name, req.query.version ?? null),
  );
  app.get(
    '/api/v1/devices/:id/services',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listDeviceServices',
        summary: "A device's services: the revision each serves, its image and model versions",
        description: HOW,
        tags: ['devices'],
        params: Type.Object({ id: DeviceId }),
        response: { 200: DeviceServices, 404: ErrorBody },
      },
    },
    async (req) => locator.deviceServices(req.params.id),
  );
};
