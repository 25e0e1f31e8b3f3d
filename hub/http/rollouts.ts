import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { ServiceName } from '../../shared/api/deployments.js';
import { Rollout, RolloutList } from '../../shared/api/rollouts.js';
import { actorOf } from '../auth/api-keys.js';
import type { RolloutController } from '../fleet/rollout-controller.js';
import { requestKey } from './auth.js';

const tags = ['rollouts'];
const params = Type.Object({ id: Type.Integer({ minimum: 1 }) });

export const rolloutRoutes: FastifyPluginAsyncTypebox<{ rollouts: RolloutController }> = async (app, { rollouts }) => {
  app.get(
    '/api/v1/rollouts',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listRollouts',
        summary: 'Rollouts, newest first: the history of every deployment',
        tags,
        querystring: Type.Object({ service: Type.Optional(ServiceName), active: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 200: RolloutList },
      },
    },
    async (req) => ({ rollouts: await rollouts.list(req.query) }),
  );
  app.get(
    '/api/v1/rollouts/:id',
    { config: { scope: 'read' }, schema: { operationId: 'getRollout', summary: 'One rollout: phase, batch, counts per device phase, and every device', tags, params, response: { 200: Rollout, 404: ErrorBody } } },
    async (req) => rollouts.view(req.params.id),
  );
  const action = (name: 'pause' | 'resume' | 'abort', operationId: string, summary: string) =>
    app.post(
      `/api/v1/rollouts/:id/${name}`,
      { config: { scope: 'deploy' }, schema: { operationId, summary, tags, params, response: { 200: Rollout, 404: ErrorBody, 409: ErrorBody } } },
      async (req) => (name === 'abort' ? rollouts.abort(req.params.id, actorOf(requestKey(req))) : rollouts[name](req.params.id)),
    );
  action('pause', 'pauseRollout', 'Pause: devices already moving finish; no new device is moved');
  action('resume', 'resumeRollout', 'Resume a paused rollout');
  action('abort', 'abortRollout', 'Abort: stop, and roll back every device the rollout moved (a rollback rollout, all at once)');
};
