/**
 * A model version's lineage, dataset to devices (`edgeml model lineage`, the portal's Models page).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, Name, VersionRef } from '../../shared/api/common.js';
import { ModelLineage } from '../../shared/api/lineage.js';
import { ModelLineages, type ModelLineagePorts } from '../registry/model-lineage.js';
import { selectorFromRef } from './version-ref.js';

export const lineageRoutes: FastifyPluginAsyncTypebox<ModelLineagePorts> = async (app, ports) => {
  const lineages = new ModelLineages(ports);
  app.get(
    '/api/v1/models/:name/versions/:ref/lineage',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getModelLineage',
        summary: 'A model version (`3`, `latest` or `@ALIAS`) from dataset to devices',
        description:
          'Its parent, datasets and training (from the lineage stored with it), the manifest versions that include it, the image builds of those manifests, the devices serving it, and the services that may (their serving image is one the hub cannot attribute), as `/where?version=`.',
        tags: ['models'],
        params: Type.Object({ name: Name, ref: VersionRef }),
        response: { 200: ModelLineage, 404: ErrorBody },
      },
    },
    async (req) => lineages.of(req.params.name, selectorFromRef(req.params.ref)),
  );
};
