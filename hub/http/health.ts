import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export interface HealthSource {
  version: string;
  devicesOnline(): number;
  mqtt(): { connectedClients: number; received: number; invalid: number };
}

const Health = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String(),
  devicesOnline: Type.Integer(),
  mqtt: Type.Object({
    connectedClients: Type.Integer(),
    received: Type.Integer({ description: 'device messages received' }),
    invalid: Type.Integer({ description: 'device messages dropped because they failed validation' }),
  }),
});

/** Open (no API key): load balancers, scripts and the CLI probe it. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ source: HealthSource }> = async (app, { source }) => {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness and fleet headline', tags: ['hub'], response: { 200: Health } } },
    async () => ({ status: 'ok' as const, version: source.version, devicesOnline: source.devicesOnline(), mqtt: source.mqtt() }),
  );
};
