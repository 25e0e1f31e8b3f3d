import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { Device, DeviceEnroll, DeviceEnrollment, DeviceId, DeviceLabelsUpdate, DeviceList, DeviceListQuery, DeviceTokenRotated } from '../../shared/api/devices.js';
import { DEFAULT_GRACE, SecretRotate } from '../../shared/api/rotations.js';
import type { DeviceDirectory } from '../fleet/device-directory.js';
import { requestKey } from './auth.js';
import { requestActor, requestSecret } from './idempotency.js';
import { keyValues } from '../registry/key-values.js';

const tags = ['devices'];
const params = Type.Object({ id: DeviceId });

/** `broker`: the broker URL enrollment tells the device (known once the broker listens). */
export const deviceRoutes: FastifyPluginAsyncTypebox<{ devices: DeviceDirectory; broker: () => string }> = async (app, { devices, broker }) => {
  app.post(
    '/api/v1/devices',
    {
      config: {
        scope: 'admin',
        idempotent: {
          status: 201,
          find: async (made, secret) => {
            const found = devices.enrolledBy(made, secret);
            return found && { by: found.by, body: { ...found.enrolled, broker: broker() } };
          },
        },
      },
      schema: {
        operationId: 'enrollDevice',
        summary: 'Enroll a device: the answer carries its token, once',
        description: 'The agent connects to the broker with username = device id and password = this token. The hub keeps only a hash of it.',
        tags,
        body: DeviceEnroll,
        response: { 201: DeviceEnrollment, 400: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      const enrolled = await devices.enroll(req.body, requestActor(req), requestSecret(req));
      req.log.info({ device: enrolled.id, labels: enrolled.labels, by: requestKey(req).id }, 'device enrolled');
      return reply.code(201).send({ ...enrolled, broker: broker() });
    },
  );
  app.get(
    '/api/v1/devices',
    { config: { scope: 'read' }, schema: { operationId: 'listDevices', summary: 'Enrolled devices, filtered by labels and status', tags, querystring: DeviceListQuery, response: { 200: DeviceList } } },
    async (req) => ({ devices: devices.list({ labels: keyValues('label', req.query.label), ...(req.query.status ? { status: req.query.status } : {}) }) }),
  );
  app.get(
    '/api/v1/devices/:id',
    { config: { scope: 'read' }, schema: { operationId: 'getDevice', summary: 'One device: status, labels, facts, and its services with their replicas', tags, params, response: { 200: Device, 404: ErrorBody } } },
    async (req) => devices.get(req.params.id),
  );
  app.patch(
    '/api/v1/devices/:id/labels',
    {
      config: { scope: 'admin' },
      schema: { operationId: 'updateDeviceLabels', summary: 'Set and remove labels', tags, params, body: DeviceLabelsUpdate, response: { 200: Device, 400: ErrorBody, 404: ErrorBody } },
    },
    async (req) => {
      const device = await devices.updateLabels(req.params.id, req.body);
      req.log.info({ device: device.id, labels: device.labels, by: requestKey(req).id }, 'device labels changed');
      return device;
    },
  );
  app.post(
    '/api/v1/devices/:id/revoke',
    {
      config: { scope: 'admin' },
      schema: { operationId: 'revokeDevice', summary: 'Revoke a device: its token stops working and its connection is dropped', tags, params, response: { 200: Device, 404: ErrorBody } },
    },
    async (req) => {
      const device = await devices.revoke(req.params.id);
      req.log.info({ device: device.id, by: requestKey(req).id }, 'device revoked');
      return device;
    },
  );
  app.post(
    '/api/v1/devices/:id/rotate-token',
    {
      config: {
        scope: 'admin',
        idempotent: {
          status: 200,
          find: async (made, secret) => {
            const found = devices.rotatedBy(made, secret);
            return found && { by: found.by, body: found.rotated };
          },
        },
      },
      schema: {
        operationId: 'rotateDeviceToken',
        summary: 'Give a device a new token (in this answer only); the old one keeps working for the grace, then only the new one',
        description: `Without a body the grace is ${DEFAULT_GRACE}. When the grace ends, a connection made with the old token is dropped; the agent reconnects with the new one. A revoked device cannot get a token (409).`,
        tags,
        params,
        body: Type.Optional(SecretRotate),
        response: { 200: DeviceTokenRotated, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => {
      const rotated = await devices.rotateToken(req.params.id, req.body?.grace ?? DEFAULT_GRACE, requestActor(req), requestSecret(req));
      req.log.info({ deviceId: rotated.id, previousValidUntil: rotated.previousValidUntil, by: requestKey(req).id }, 'device token rotated');
      return rotated;
    },
  );
};
