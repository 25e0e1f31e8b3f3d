/**
 * The hub's HTTP server: fastify with TypeBox route schemas, which also produce the OpenAPI
 * document at /openapi.json and Swagger UI at /docs.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { Logger } from '../../shared/logger.js';
import type { DeviceDirectory } from '../fleet/device-directory.js';
import { installErrorHandler } from './errors.js';
import { healthRoutes, type HealthSource } from './health.js';
import { deviceRoutes } from './devices.js';

export interface HttpDeps {
  logger: Logger;
  health: HealthSource;
  devices: DeviceDirectory;
}

/** Per-request lines at debug: probes and CLI polling would drown an info log. */
class DebugRequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ method: request.method, url: request.url }, 'request');
  }
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    request.log.debug({ statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime), err: error?.message }, 'response');
  }
}

export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger, logController: new DebugRequestLog() });
  installErrorHandler(app);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'edgeml hub', version: deps.health.version, description: 'Model registry, builds, fleet rollouts and telemetry.' },
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(healthRoutes, { source: deps.health });
  await app.register(deviceRoutes, { devices: deps.devices });
  return app;
}
