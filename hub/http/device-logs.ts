/**
 * `GET /api/v1/devices/{id}/logs`: a device's service or agent output, streamed as NDJSON from a
 * log session on the device (hub/logs/log-relay.ts), ended on the device when the reader hangs up.
 */
import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { DeviceId } from '../../shared/api/devices.js';
import { DeviceLogEnd, DeviceLogLine, DeviceLogsQuery } from '../../shared/api/logs.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { DeviceDirectory } from '../fleet/device-directory.js';
import type { LogEntry, LogRelay } from '../logs/log-relay.js';
import { requestKey } from './auth.js';
import { timeBound } from './time-bounds.js';

export interface DeviceLogRoutesOptions {
  relay: LogRelay;
  devices: Pick<DeviceDirectory, 'get'>;
  /** The services a device runs or should run (desired and reported). */
  servicesOf(deviceId: string): ReadonlySet<string>;
  clock: Clock;
}

const invalid = (message: string) => new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, message, { httpStatus: 400 });

export const deviceLogRoutes: FastifyPluginAsyncTypebox<DeviceLogRoutesOptions> = async (app, o) => {
  app.get(
    '/api/v1/devices/:id/logs',
    {
      config: { scope: 'deploy' },
      schema: {
        operationId: 'getDeviceLogs',
        summary: "A service's (every replica's) or the agent's output, from the device, as NDJSON",
        description: 'One DeviceLogLine per line, then one DeviceLogEnd. Asked of the device over MQTT on demand; with follow=true it streams new lines for at most 10 minutes and 1 MiB, and stops on the device when the reader hangs up. While nothing comes, an empty line every 30 s (skip it).',
        tags: ['devices'],
        params: Type.Object({ id: DeviceId }),
        querystring: DeviceLogsQuery,
        response: {
          200: { description: 'NDJSON: DeviceLogLine lines, then a DeviceLogEnd (empty lines are heartbeats)', content: { 'application/x-ndjson': { schema: Type.Union([DeviceLogLine, DeviceLogEnd]) } } },
          400: ErrorBody,
          404: ErrorBody,
          409: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const q = req.query;
      if ((q.service === undefined) === (q.agent !== true)) throw invalid('name one source: service=NAME or agent=true');
      o.devices.get(id);
      if (q.service !== undefined && !o.servicesOf(id).has(q.service)) {
        throw new EdgemlError(ErrorCodes.HUB_NOT_FOUND, `device ${id} has no service ${q.service}`, { httpStatus: 404 });
      }
      const since = q.since === undefined ? undefined : new Date(timeBound('since', q.since, o.clock.now())).toISOString();
      const stream = await o.relay.open(id, {
        source: q.service === undefined ? { agent: true } : { service: q.service },
        follow: q.follow ?? false,
        ...(since === undefined ? {} : { since }),
        ...(q.tail === undefined ? {} : { tail: q.tail }),
      });
      req.log.info({ device: id, service: q.service, agent: q.agent, follow: q.follow, by: requestKey(req).id }, 'device logs requested');
      // A reader that hangs up ends the session on the device.
      // (The response's close: it fires when the connection goes, the request's may have fired already.)
      reply.raw.once('close', () => stream.close());
      // Gone while the device was being asked: that close has passed already.
      if (req.raw.socket.destroyed) stream.close();
      const body = Readable.from((async function* () {
        // An idle follow gets an empty line now and then: the reader's body timeout (undici: 300 s) must not end it.
        for await (const entry of stream) yield entry === null ? '\n' : `${JSON.stringify(entry satisfies LogEntry)}\n`;
      })());
      return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(body as never);
    },
  );
};
