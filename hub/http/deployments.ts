import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { Capture, Deployment, DeploymentCreate, DeploymentCreated, DeploymentList, DeploymentListQuery, KeyRotated, PER_REPLICA, ServiceName, ServiceUpdate } from '../../shared/api/deployments.js';
import { DEFAULT_GRACE, SecretRotate } from '../../shared/api/rotations.js';
import { actorOf } from '../auth/api-keys.js';
import { publicDeployment, serviceKey, type Deployments } from '../fleet/deployments.js';
import { requestKey } from './auth.js';
import { requestActor, requestSecret } from './idempotency.js';

const tags = ['deployments'];
const params = Type.Object({ service: ServiceName });

export const deploymentRoutes: FastifyPluginAsyncTypebox<{ deployments: Deployments }> = async (app, { deployments }) => {
  app.post(
    '/api/v1/deployments',
    {
      config: {
        scope: 'deploy',
        idempotent: {
          status: 201,
          find: async (made, secret) => {
            const found = await deployments.madeBy('create', made);
            return found && { by: found.by, body: { ...publicDeployment(found.record), key: serviceKey(secret).key } };
          },
        },
      },
      schema: {
        operationId: 'createDeployment',
        summary: 'Deploy a service to the devices a label selector matches; the answer carries its API key, once',
        description:
          `Give exactly one of \`image\` (pinned by digest) and \`build\` (a hub image that succeeded). Each device runs \`replicas\` containers (fixed), or between \`minReplicas\` and \`maxReplicas\` moved by its autoscaler (default 1..1). Limits are ${PER_REPLICA}: \`maxConcurrent\` requests in flight per replica (default 1), \`maxQueue\` waiting per ready replica (default 10), then 429; \`memory\` and \`cpus\` bound each replica's container. \`rollout\` chooses how devices get it (default all at once). \`capture\` is off unless given.`,
        tags,
        body: DeploymentCreate,
        response: { 201: DeploymentCreated, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => reply.code(201).send(await deployments.create(req.body, requestActor(req), requestSecret(req))),
  );
  app.get(
    '/api/v1/deployments',
    { config: { scope: 'read' }, schema: { operationId: 'listDeployments', summary: 'Deployments (with include=deleted, deleted ones too)', tags, querystring: DeploymentListQuery, response: { 200: DeploymentList } } },
    async (req) => ({ deployments: await deployments.list({ deleted: req.query.include === 'deleted' }) }),
  );
  app.get(
    '/api/v1/deployments/:service',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getDeployment',
        summary: 'One deployment and its current rollout',
        description: 'A name with no live deployment answers its latest deleted one (`deletedAt` set), if any. 409 when its stored record no longer validates.',
        tags,
        params,
        response: { 200: Deployment, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => deployments.get(req.params.service),
  );
  app.delete(
    '/api/v1/deployments/:service',
    {
      config: {
        scope: 'deploy',
        idempotent: {
          status: 200,
          find: async (made) => {
            const found = await deployments.madeBy('delete', made);
            return found && { by: found.by, body: publicDeployment(found.record) };
          },
        },
      },
      schema: {
        operationId: 'deleteDeployment',
        summary: 'Delete a service: it leaves every device; its history stays on the hub, shown as deleted',
        description:
          "An active rollout of it is aborted (not rolled back). Every device's desired state drops it at once: agents drain and remove its containers and prune its images, and the gateway answers 404 for it. The hub keeps the record (`deletedAt`, `deletedBy`), its revisions and rollouts: `GET /api/v1/deployments?include=deleted`. The name can be deployed again. The answer is the deleted deployment; a retry under the same Idempotency-Key answers it again.",
        tags,
        params,
        response: { 200: Deployment, 404: ErrorBody },
      },
    },
    async (req) => deployments.delete(req.params.service, requestActor(req)),
  );
  app.post(
    '/api/v1/deployments/:service/update',
    {
      config: {
        scope: 'deploy',
        idempotent: {
          status: 200,
          find: async (made) => {
            const found = await deployments.madeBy('update', made);
            return found && { by: found.by, body: publicDeployment(found.record) };
          },
        },
      },
      schema: {
        operationId: 'updateDeployment',
        summary: 'Change a service: its image (a rollout), its limits and replicas (in place), or its target (a rollout); its name, device URL and key stay',
        description: `Give at least one change. A new \`image\` or \`build\` is a new revision, rolled out with \`rollout\`. Limits (${PER_REPLICA}) and replicas are the deployment's, not a revision's: every targeted device gets them at once, with no new revision and no rollout, and applies them to its running containers. A new \`target\` is a rollout (kind \`retarget\`, with \`rollout\`'s strategy): devices that newly match get the service, devices that no longer match lose it; give a new target and a new image in two updates. Fields not given keep their values.`,
        tags,
        params,
        body: ServiceUpdate,
        response: { 200: Deployment, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => deployments.update(req.params.service, req.body, requestActor(req)),
  );
  app.post(
    '/api/v1/deployments/:service/rotate-key',
    {
      config: {
        scope: 'deploy',
        idempotent: {
          status: 200,
          find: async (made, secret) => {
            const found = await deployments.madeBy('rotate-key', made);
            return found && { by: found.by, body: { ...publicDeployment(found.record), key: serviceKey(secret).key, previousKeyValidUntil: found.change?.previousKeyValidUntil ?? null } };
          },
        },
      },
      schema: {
        operationId: 'rotateDeploymentKey',
        summary: 'Give a service a new API key (in this answer only); the old one stays valid for the grace, then only the new one',
        description: `Devices get the new key with their next desired state, with no restart. Without a body the grace is ${DEFAULT_GRACE}. Every rotation is listed in the deployment's \`rotations\`.`,
        tags,
        params,
        body: Type.Optional(SecretRotate),
        response: { 200: KeyRotated, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => deployments.rotateKey(req.params.service, req.body?.grace ?? DEFAULT_GRACE, requestActor(req), requestSecret(req)),
  );
  app.put(
    '/api/v1/deployments/:service/capture',
    {
      config: { scope: 'deploy' },
      schema: {
        operationId: 'setDeploymentCapture',
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
