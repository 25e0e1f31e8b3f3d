import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ApiKeyCreate, ApiKeyCreated, ApiKeyInfo, ApiKeyList, ApiKeyRotated, WhoAmI } from '../../shared/api/apikeys.js';
import { DEFAULT_GRACE, SecretRotate } from '../../shared/api/rotations.js';
import { ErrorBody } from '../../shared/api/common.js';
import type { ApiKeyAuthority } from '../auth/api-keys.js';
import { requestKey } from './auth.js';
import { requestActor, requestSecret } from './idempotency.js';

const tags = ['api keys'];
const params = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{12}$' }) });

export const apiKeyRoutes: FastifyPluginAsyncTypebox<{ authority: ApiKeyAuthority }> = async (app, { authority }) => {
  app.post(
    '/api/v1/apikeys',
    {
      config: {
        scope: 'admin',
        idempotent: {
          status: 201,
          find: async (made, secret) => {
            const found = await authority.createdBy(made, secret);
            return found && { by: found.by, body: found.created };
          },
        },
      },
      schema: { operationId: 'createApiKey', summary: 'Create an API key (the key is in this answer only)', tags, body: ApiKeyCreate, response: { 201: ApiKeyCreated, 400: ErrorBody } },
    },
    async (req, reply) => {
      const created = await authority.create(req.body.name, req.body.scope, requestActor(req), requestSecret(req));
      req.log.info({ keyId: created.id, name: created.name, scope: created.scope, by: requestKey(req).id }, 'API key created');
      return reply.code(201).send(created);
    },
  );
  app.get(
    '/api/v1/whoami',
    { config: { scope: 'read' }, schema: { operationId: 'getWhoami', summary: "The calling API key's id, name and scope (never the key)", tags, response: { 200: WhoAmI } } },
    async (req): Promise<WhoAmI> => {
      const { id, name, scope } = requestKey(req);
      return { id, name, scope };
    },
  );
  app.get('/api/v1/apikeys', { config: { scope: 'admin' }, schema: { operationId: 'listApiKeys', summary: 'List API keys (never the keys themselves)', tags, response: { 200: ApiKeyList } } }, async () => ({
    keys: await authority.list(),
  }));
  app.delete(
    '/api/v1/apikeys/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key (kept, marked revoked)',
        tags,
        params,
        response: { 200: ApiKeyInfo, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => {
      const info = await authority.revoke(req.params.id);
      req.log.info({ keyId: info.id, by: requestKey(req).id }, 'API key revoked');
      return info;
    },
  );
  app.post(
    '/api/v1/apikeys/:id/rotate',
    {
      config: {
        scope: 'admin',
        idempotent: {
          status: 200,
          find: async (made, secret) => {
            const found = await authority.rotatedBy(made, secret);
            return found && { by: found.by, body: found.rotated };
          },
        },
      },
      schema: {
        operationId: 'rotateApiKey',
        summary: 'Give an API key a new secret (in this answer only); the old one keeps working for the grace, then only the new one',
        description: `Same id, name and scope. Without a body the grace is ${DEFAULT_GRACE}. A revoked key cannot be rotated (409).`,
        tags,
        params,
        body: Type.Optional(SecretRotate),
        response: { 200: ApiKeyRotated, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => {
      const rotated = await authority.rotate(req.params.id, req.body?.grace ?? DEFAULT_GRACE, requestActor(req), requestSecret(req));
      req.log.info({ keyId: rotated.id, previousValidUntil: rotated.previousValidUntil, by: requestKey(req).id }, 'API key rotated');
      return rotated;
    },
  );
};
