/** GET /healthz: the hub's liveness and fleet headline (no API key). */
import { Type, type Static } from '@sinclair/typebox';

export const Health = Type.Object({
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
export type Health = Static<typeof Health>;
