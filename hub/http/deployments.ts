import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { Capture, Deployment, DeploymentCreate, DeploymentCreated, DeploymentList, ServiceName, ServiceUpdate } from '../../shared/api/deployments.js';
import { actorOf } from '../auth/api-keys.js';
import type { Deployments } from '../fleet/deployments.js';
import { requestKey } from './auth.js';

const tags = ['deployments'];
const params = Type.Object({ service: ServiceName });

export const deploymentRoutes: FastifyPluginAsyncTypebox<{ deployments: Deployments }> = async (app, { deployments }) => {
  app.post(
    '/api/v1/deployments',
    {
      config: { scope: 'deploy' },
      schema: {
        summary: 'Deploy a service to the devices a label selector matches; the answer carries its API key, once',
        description:
          'Give exactly one of `image` (pinned by digest) and `build` (a hub image that succeeded). Limits are per device (one replica): `maxConcurrent` requests in flight (default 1), `maxQueue` waiting (default 10), then 429. `rollout` chooses how devices get it (default all at once). `capture` is off unless given.',
        tags,
        body: DeploymentCreate,
        response: { 201: DeploymentCreated, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => reply.code(201).send(await deployments.create(req.body, actorOf(requestKey(req)))),
  );
  app.get(
    '/api/v1/deployments',
    { config: { scope: 'read' }, schema: { summary: 'Deployments', tags, response: { 200: DeploymentList } } },
    async () => ({ deployments: await deployments.list() }),
  );
  app.get(
    '/api/v1/deployments/:service',
    { config: { scope: 'read' }, schema: { summary: 'One deployment and its current rollout', tags, params, response: { 200: Deployment, 404: ErrorBody } } },
    async (req) => deployments.get(req.params.service),
  );
  app.post(
    '/api/v1/deployments/:service/update',
    {
      config: { scope: 'deploy' },
      schema: {
        summary: 'Move a service to another image; its name, device URL and key stay',
        tags,
        params,
        body: ServiceUpdate,
        response: { 200: Deployment, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => deployments.update(req.params.service, req.body, actorOf(requestKey(req))),
  );
  app.put(
    '/api/v1/deployments/:service/capture',
    {
      config: { scope: 'deploy' },
      schema: {
        summary: "Set a service's data capture; devices apply it at once, with no new revision and no restart",
        description: 'The whole settings replace the old ones; `rate` 0 turns capture off.',
        tags,
        params,
        body: Capture,
        response: { 200: Deployment, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => deployments.setCapture(req.params.service, req.body, actorOf(requestKey(req))),
  );
};
