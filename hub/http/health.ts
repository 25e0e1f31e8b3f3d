import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Health } from '../../shared/api/health.js';

export interface HealthSource {
  version: string;
  devicesOnline(): number;
  mqtt(): { connectedClients: number; received: number; invalid: number };
  /** Stored records the hub skips because they no longer validate (GET /api/v1/problems). */
  problems(): number;
}

/** Open (no API key): load balancers, scripts and the CLI probe it. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ source: HealthSource }> = async (app, { source }) => {
  app.get('/healthz', { schema: { operationId: 'getHealth', summary: 'Liveness and fleet headline', tags: ['hub'], response: { 200: Health } } }, async () => {
    const problems = source.problems();
    return { status: problems > 0 ? ('degraded' as const) : ('ok' as const), version: source.version, devicesOnline: source.devicesOnline(), problems, mqtt: source.mqtt() };
  });
};
