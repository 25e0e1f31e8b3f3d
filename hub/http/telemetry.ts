/**
 * Telemetry queries: a service's figures per device and for the fleet and over time, a device's own metrics, and
 * capture export as an NDJSON stream (rows go out as they are read; nothing is buffered whole).
 */
import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { ServiceName } from '../../shared/api/deployments.js';
import { DeviceId } from '../../shared/api/devices.js';
import {
  CaptureExportQuery,
  DeviceTelemetry,
  NDJSON,
  ServiceSeries,
  ServiceSeriesQuery,
  ServiceTelemetry,
  ServiceTelemetryQuery,
  TelemetryWindowQuery,
} from '../../shared/api/telemetry.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { ShippedLogs, ShippedLogsQuery } from '../../shared/api/logs.js';
import type { DeviceDirectory } from '../fleet/device-directory.js';
import { queryShippedLogs } from '../telemetry/shipped-logs.js';
import type { TelemetryArchive } from '../telemetry/archive.js';
import { captureLines } from '../telemetry/capture-export.js';
import { deviceReport } from '../telemetry/device-report.js';
import { serviceReport, type TimeWindow } from '../telemetry/service-report.js';
import { serviceSeries } from '../telemetry/service-series.js';
import { timeBound } from './time-bounds.js';

export interface TelemetryRoutesOptions {
  archive: Pick<TelemetryArchive, 'read'>;
  devices: Pick<DeviceDirectory, 'get' | 'reportsService'>;
  /**
   * Whether a deployment of that name exists now. A service with no deployment, no device reporting
   * it and no figures in the window is unknown (404): most likely a typo. Without this lookup only
   * devices and figures count.
   */
  serviceDeployed?: (service: string) => Promise<boolean>;
  /** Messages dropped as invalid since the hub started, by device. */
  invalidByDevice(): Record<string, number>;
  clock: Clock;
}

const tags = ['telemetry'];
const serviceParams = Type.Object({ service: ServiceName });

function windowOf(query: { since: string; until?: string | undefined }, now: number): TimeWindow {
  const window = { since: timeBound('since', query.since, now), until: query.until === undefined ? now : timeBound('until', query.until, now) };
  if (window.until <= window.since) throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `until must be after since (${new Date(window.since).toISOString()})`, { httpStatus: 400 });
  return window;
}

export const telemetryRoutes: FastifyPluginAsyncTypebox<TelemetryRoutesOptions> = async (app, o) => {
  /** Refuses a name the hub knows nothing of; a deleted service with figures in the window still answers. */
  const knownOr404 = async (service: string, window: TimeWindow, hasFigures: boolean): Promise<void> => {
    if (hasFigures || o.devices.reportsService(service) || (await o.serviceDeployed?.(service))) return;
    throw new EdgemlError(
      ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND,
      `service ${service}: no deployment of that name, no device runs it, and no telemetry for it between ${new Date(window.since).toISOString()} and ${new Date(window.until).toISOString()}`,
      { httpStatus: 404 },
    );
  };
  app.get(
    '/api/v1/telemetry/services/:service',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getServiceTelemetry',
        summary: "A service's requests, errors, rejections, latency percentiles, ready replicas and scaling decisions per device and for the fleet",
        description:
          'From the metrics batches whose interval ends in the window. Counts are exact; percentiles are merged from the devices’ latency histograms and known to one bucket. `replicas` is a gauge: each device’s ready replicas at the end of its latest interval in the window, summed for the fleet; `scaling` counts the autoscaler’s decisions in the window.',
        tags,
        params: serviceParams,
        querystring: ServiceTelemetryQuery,
        response: { 200: ServiceTelemetry, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => {
      const window = windowOf(req.query, o.clock.now());
      const report = await serviceReport(o.archive, { service: req.params.service, device: req.query.device, ...window });
      await knownOr404(req.params.service, window, report.devices.length > 0);
      return report;
    },
  );
  app.get(
    '/api/v1/telemetry/services/:service/series',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getServiceTelemetrySeries',
        summary: "A service's requests, errors, rejections, request rate, error rate and latency percentiles over time, for the fleet or one device",
        description:
          'The window split into `points` equal buckets of whole seconds; each metrics batch counts in the bucket its interval ends in, so the buckets’ counts add up to the report of the same window (`/api/v1/telemetry/services/{service}`). Empty buckets are zeros with null percentiles.',
        tags,
        params: serviceParams,
        querystring: ServiceSeriesQuery,
        response: { 200: ServiceSeries, 400: ErrorBody },
      },
    },
    // No 404 here: charts ask for series of any name, and empty buckets are their answer.
    async (req) =>
      serviceSeries(o.archive, { service: req.params.service, device: req.query.device, points: req.query.points, ...windowOf(req.query, o.clock.now()) }),
  );
  app.get(
    '/api/v1/telemetry/devices/:id',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getDeviceTelemetry',
        summary: "A device's latest metrics, containers and outbox drops, and a short series of CPU, memory, disk and temperature",
        tags,
        params: Type.Object({ id: DeviceId }),
        querystring: TelemetryWindowQuery,
        response: { 200: DeviceTelemetry, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => {
      const { id } = o.devices.get(req.params.id);
      const invalid = o.invalidByDevice();
      // hasOwn: a device may be called `constructor`.
      return deviceReport(o.archive, { device: id, invalidMessages: Object.hasOwn(invalid, id) ? invalid[id]! : 0, ...windowOf(req.query, o.clock.now()) });
    },
  );
  app.get(
    '/api/v1/telemetry/services/:service/logs',
    {
      // Not `read`: error lines can hold users' data.
      config: { scope: 'deploy' },
      schema: {
        operationId: 'listShippedLogs',
        summary: "Error lines a service's devices shipped with their telemetry (deployments with shipLogs error)",
        description: 'The newest `limit` lines of the window, oldest first, with the number of lines the devices\' rate limit left out in it.',
        tags,
        params: serviceParams,
        querystring: ShippedLogsQuery,
        response: { 200: ShippedLogs, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => {
      const window = windowOf(req.query, o.clock.now());
      const answer = await queryShippedLogs(o.archive, { service: req.params.service, device: req.query.device, since: new Date(window.since), until: new Date(window.until), limit: req.query.limit });
      await knownOr404(req.params.service, window, answer.lines.length > 0 || answer.dropped > 0);
      return answer;
    },
  );
  app.get(
    '/api/v1/captures/:service',
    {
      // Not `read`: captures are users' inputs and answers, and a read key sits in dashboards' scrape configs.
      config: { scope: 'deploy' },
      schema: {
        operationId: 'exportCaptures',
        summary: 'Export captured requests and answers of a service, one JSON sample per line (NDJSON), for retraining',
        description: 'Each line is a captured sample with the `device` that sent it. Samples come day by day, not sorted within a day.',
        tags,
        params: serviceParams,
        querystring: CaptureExportQuery,
        produces: [NDJSON],
        response: { 200: { content: { [NDJSON]: { schema: Type.String({ description: 'one sample per line' }) } } }, 400: ErrorBody },
      },
    },
    async (req, reply) => {
      const lines = captureLines(o.archive, { service: req.params.service, device: req.query.device, model: req.query.model, ...windowOf(req.query, o.clock.now()) });
      const stream = Readable.from(lines);
      // A client that hangs up mid-export stops the reading.
      reply.raw.once('close', () => stream.destroy());
      // The schema documents text; fastify sends a stream as it comes (the cast is for the typings only).
      return reply.type(NDJSON).send(stream as unknown as string);
    },
  );
};
