import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DEVICE_ID_PATTERN } from '../../shared/topics.js';
import type { DeviceDirectory } from '../fleet/device-directory.js';
import { ErrorBody } from '../../shared/api/common.js';
import { Device } from './schemas.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

export const deviceRoutes: FastifyPluginAsyncTypebox<{ devices: DeviceDirectory }> = async (app, { devices }) => {
  app.get(
    '/api/v1/devices',
    { config: { scope: 'read' }, schema: { summary: 'Devices the hub has heard from', tags: ['devices'], response: { 200: Type.Object({ devices: Type.Array(Device) }) } } },
    async () => ({ devices: devices.list() }),
  );
  app.get(
    '/api/v1/devices/:id',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'One device: status and facts',
        tags: ['devices'],
        params: Type.Object({ id: Type.String({ pattern: DEVICE_ID_PATTERN }) }),
        response: { 200: Device, 404: ErrorBody },
      },
    },
    async (req) => {
      const device = devices.get(req.params.id);
      if (!device) throw new EdgemlError(ErrorCodes.HUB_DEVICE_NOT_FOUND, `device ${req.params.id} not found`, { httpStatus: 404 });
      return device;
    },
  );
};
