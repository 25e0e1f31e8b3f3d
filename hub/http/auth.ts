/**
 * API key checks for every `/api/v1` route. Each route states its scope in `config.scope`; a route
 * without one fails at startup, so nothing can be exposed by forgetting. The check runs on
 * request, before the body is read: an unauthenticated client cannot make the hub store an upload.
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, type Scope } from '../../shared/api/common.js';
import type { ApiKeyAuthority } from '../auth/api-keys.js';
import type { ApiKeyRecord } from '../store/store.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Least scope an API key needs for this route; open routes (health, docs) have none. */
    scope?: Scope;
    /** Request body shown in OpenAPI for routes that stream their body (not validated). */
    docBody?: unknown;
  }
  interface FastifyRequest {
    apiKey: ApiKeyRecord | null;
  }
}

export const SECURITY_SCHEME = 'apiKey';

export function installApiKeyAuth(app: FastifyInstance, authority: ApiKeyAuthority): void {
  app.decorateRequest('apiKey', null);
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith(API_PREFIX)) return;
    const scope = route.config?.scope;
    if (!scope) throw new Error(`route ${String(route.method)} ${route.url} does not state its API key scope`);
    const schema = route.schema ?? {};
    route.schema = {
      ...schema,
      security: [{ [SECURITY_SCHEME]: [] }],
      description: [(schema as { description?: string }).description, `Needs an API key with the \`${scope}\` scope (or a wider one).`].filter(Boolean).join('\n\n'),
    };
  });
  app.addHook('onRequest', async (req) => {
    const scope = req.routeOptions.config.scope;
    if (!scope) return;
    const key = await authority.authenticate(req.headers.authorization);
    authority.authorize(key, scope);
    req.apiKey = key;
  });
}

/** The authenticated key of a scoped route (set by the onRequest hook above). */
export function requestKey(req: { apiKey: ApiKeyRecord | null }): ApiKeyRecord {
  if (!req.apiKey) throw new Error('route has no API key: it must state a scope');
  return req.apiKey;
}
