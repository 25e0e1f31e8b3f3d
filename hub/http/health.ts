import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export interface HealthSource {
  version: string;
  devicesOnline(): number;
  mqtt(): { connectedClients: number; received: number; invalid: number };
  /** Stored records the hub skips because they no longer validate (GET /api/v1/problems). */
  problems(): number;
}

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')], {
    description: '`degraded`: the hub serves, but skips stored records that no longer validate (`problems`, listed at GET /api/v1/problems)',
  }),
  version: Type.String(),
  devicesOnline: Type.Integer(),
  problems: Type.Integer({ minimum: 0 }),
  mqtt: Type.Object({
    connectedClients: Type.Integer(),
    received: Type.Integer({ description: 'device messages received' }),
    invalid: Type.Integer({ description: 'device messages dropped because they failed validation' }),
  }),
});

/** Open (no API key): load balancers, scripts and the CLI probe it. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ source: HealthSource }> = async (app, { source }) => {
  app.get('/healthz', { schema: { operationId: 'getHealth', summary: 'Liveness and fleet headline', tags: ['hub'], response: { 200: Health } } }, async () => {
    const problems = source.problems();
    return { status: problems > 0 ? ('degraded' as const) : ('ok' as const), version: source.version, devicesOnline: source.devicesOnline(), problems, mqtt: source.mqtt() };
  });
};
