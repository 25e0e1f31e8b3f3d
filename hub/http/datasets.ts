/**
 * Datasets over HTTP: a service's labelled data as an NDJSON stream (rows go out as they are
 * joined; nothing is buffered whole), and base datasets.
 */
import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/api/common.js';
import { LabelledExportQuery } from '../../shared/api/datasets.js';
import { ServiceName } from '../../shared/api/deployments.js';
import { NDJSON, parseTimeBound } from '../../shared/api/telemetry.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { LabelledData, LabelledRow } from '../datasets/labelled-data.js';

export interface DatasetRoutesOptions {
  labelled: LabelledData;
  clock: Clock;
}

const tags = ['datasets'];

function isoBound(name: string, text: string | undefined, now: number): string | undefined {
  if (text === undefined) return undefined;
  const ms = parseTimeBound(text, now);
  // Beyond ±8.64e15 ms a Date is invalid: `since=99999999999d` is a bad request, not a crash.
  if (ms === undefined || Math.abs(ms) > 8.64e15) throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `${name} ${JSON.stringify(text)} is not a duration (7d) or a date-time`, { httpStatus: 400 });
  return new Date(ms).toISOString();
}

/** `NAME` matches every version of the model, `NAME:V` that one. */
function modelMatch(filter: string | undefined): (row: LabelledRow) => boolean {
  if (filter === undefined) return () => true;
  return filter.includes(':') ? (row) => row.model === filter : (row) => row.model?.startsWith(`${filter}:`) === true;
}

async function* exportLines(rows: AsyncIterable<LabelledRow>, match: (row: LabelledRow) => boolean): AsyncGenerator<string> {
  for await (const row of rows) {
    if (!match(row)) continue;
    yield `${JSON.stringify({ requestId: row.requestId, time: row.time, device: row.device, model: row.model, input: row.input, output: row.output, label: row.label })}\n`;
  }
}

export const datasetRoutes: FastifyPluginAsyncTypebox<DatasetRoutesOptions> = async (app, o) => {
  app.get(
    '/api/v1/datasets/export/:service',
    {
      // Not `read`: these are users' inputs, answers and labels (like capture export).
      config: { scope: 'deploy' },
      schema: {
        summary: "Export a service's labelled data, one JSON row per line (NDJSON): captured requests joined with their labels, and inline examples",
        description:
          'Each line is `{"requestId","time","device","model","input","output","label"}`. A captured request carries the latest label sent for it (null when none); an inline example has `output` null. Captures come day by day, then inline examples.',
        tags,
        params: Type.Object({ service: ServiceName }),
        querystring: LabelledExportQuery,
        produces: [NDJSON],
        response: { 200: { content: { [NDJSON]: { schema: Type.String({ description: 'one row per line' }) } } }, 400: ErrorBody },
      },
    },
    async (req, reply) => {
      const now = o.clock.now();
      const since = isoBound('since', req.query.since, now);
      const until = isoBound('until', req.query.until, now);
      if (since !== undefined && until !== undefined && until <= since) throw new EdgemlError(ErrorCodes.HUB_INVALID_REQUEST, `until must be after since (${since})`, { httpStatus: 400 });
      const rows = o.labelled.rows({ service: req.params.service, ...(since && { since }), ...(until && { until }), ...(req.query.labelled !== undefined && { labelled: req.query.labelled }) });
      const stream = Readable.from(exportLines(rows, modelMatch(req.query.model)));
      // A client that hangs up mid-export stops the reading.
      reply.raw.once('close', () => stream.destroy());
      // The schema documents text; fastify sends a stream as it comes (the cast is for the typings only).
      return reply.type(NDJSON).send(stream as unknown as string);
    },
  );
};
