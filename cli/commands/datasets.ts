/**
 * `edgeml dataset …`: a service's labelled data exported to JSONL (`dataset export`), and base
 * datasets — JSONL files stored on the hub as immutable versions (`register`, `list`, `show`).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DATASET_UPLOAD_TYPE, type DatasetVersion } from '../../shared/api/datasets.js';
import { formatBytes } from '../../shared/size.js';
import { fileError, inputError, parseName } from '../args.js';
import { formatTime, renderFields, renderTable, shortDigest } from '../output.js';
import { createTransferProgress } from '../progress.js';
import { addClientOptions, clientAction, type ClientContext, type CliIo } from './client-command.js';
import { downloadNdjson, parseModelFilter } from './ndjson-download.js';
import { parseService } from './deployments.js';
import { withWindowOptions, type WindowFlags } from './telemetry.js';

export interface DatasetExportSummary {
  service: string;
  rows: number;
  bytes: number;
  out: string;
}

interface ExportFlags extends WindowFlags {
  labelled?: boolean;
  model?: string;
  out: string;
}

/** `NAME` (latest) or `NAME:VERSION`. */
function parseDatasetRef(text: string): { name: string; version: string } {
  const [name = '', version = 'latest', extra] = text.split(':');
  if (extra !== undefined || !/^(?:[1-9][0-9]{0,8}|latest)$/.test(version)) throw inputError(`${JSON.stringify(text)}: expected NAME or NAME:VERSION, e.g. iris-base or iris-base:2`);
  return { name: parseName('dataset name')(name), version };
}

async function exportRows(ctx: ClientContext, service: string, flags: ExportFlags): Promise<DatasetExportSummary> {
  const query = { since: flags.since, until: flags.until, model: flags.model, labelled: flags.labelled || undefined };
  const request = () => ctx.client.call('exportDataset', { params: { service }, query });
  const { lines, bytes, out } = await downloadNdjson(ctx, { request, label: `exporting ${service}`, unit: 'rows' }, flags.out);
  return { service, rows: lines, bytes, out };
}

async function registerDataset(ctx: ClientContext, name: string, path: string, description: string | undefined): Promise<DatasetVersion> {
  const info = await stat(path).catch((err: unknown) => {
    throw fileError(path, err);
  });
  if (!info.isFile()) throw inputError(`${path}: not a regular file (a dataset is one JSONL file)`);
  const progress = await createTransferProgress({ enabled: ctx.showProgress, label: `uploading ${name}`, total: info.size, stream: ctx.io.stderr });
  try {
    return await ctx.client.call('registerDatasetVersion', {
      params: { name },
      query: { description },
      upload: { contentType: DATASET_UPLOAD_TYPE, source: () => createReadStream(path), length: info.size, onProgress: progress.update },
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') throw inputError(`${path} changed while it was being uploaded; register it again`, err);
    throw fileError(path, err);
  } finally {
    progress.stop();
  }
}

function renderVersion(v: DatasetVersion): string {
  return renderFields([
    ['Dataset', `${v.name}:${v.version}`],
    ['Digest', v.digest],
    ['Rows', String(v.rows)],
    ['Size', formatBytes(v.size)],
    ['Description', v.description || undefined],
    ['Created', `${formatTime(v.createdAt)} by ${v.createdBy.keyName}`],
  ]);
}

const versionRow = (v: DatasetVersion) => [`${v.name}:${v.version}`, String(v.rows), formatBytes(v.size), shortDigest(v.digest), formatTime(v.createdAt), v.description];

export function addDatasetCommands(program: Command, io: CliIo): void {
  const dataset = program.command('dataset').description('labelled data of a service (captures joined with feedback) and base datasets (immutable JSONL versions)');
  const exportCommand = dataset
    .command('export')
    .description('write a service’s labelled data to a JSONL file: {"requestId","time","device","model","input","output","label"} per line')
    .argument('<service>', 'service name', parseService)
    .requiredOption('--out <file>', 'the JSONL file to write (replaced if it exists), or - for stdout')
    .option('--labelled', 'only rows with a label')
    .option('--model <name[:version]>', 'only rows of this model, or this version of it', parseModelFilter);
  // No default start: the whole archive (its retention bounds it).
  withWindowOptions(exportCommand, undefined).action(
    clientAction<[string], ExportFlags>(io, async (ctx, [service], flags) => {
      const summary = await exportRows(ctx, service, flags);
      const text = `exported ${summary.rows} rows (${formatBytes(summary.bytes)}) of ${service}`;
      if (summary.out !== '-') {
        ctx.out.result(summary, () => `${text} to ${summary.out}`);
        return;
      }
      // stdout carries the rows: the summary goes to stderr.
      ctx.io.stderr.write(ctx.out.json ? `${JSON.stringify(summary)}\n` : `${text}\n`);
    }),
  );
  dataset
    .command('register')
    .description('store a JSONL file (each line a JSON object with "input" and "label") as the next immutable version NAME:N')
    .argument('<name>', 'dataset name', parseName('dataset name'))
    .argument('<path>', 'the JSONL file')
    .option('--description <text>', 'what the data is')
    .action(
      clientAction<[string, string], { description?: string }>(io, async (ctx, [name, path], flags) => {
        const v = await registerDataset(ctx, name, resolve(ctx.io.cwd, path), flags.description);
        ctx.out.result(v, () => `registered ${v.name}:${v.version} (${v.rows} rows, ${formatBytes(v.size)}, ${shortDigest(v.digest)})`);
      }),
    );
  dataset
    .command('list')
    .description('every dataset with its latest version, or the versions of one')
    .argument('[name]', 'dataset name', parseName('dataset name'))
    .action(
      clientAction<[string | undefined], object>(io, async (ctx, [name]) => {
        if (name === undefined) {
          const list = await ctx.client.call('listDatasets');
          ctx.out.result(list, () => renderTable(['DATASET', 'VERSIONS', 'ROWS', 'SIZE', 'DIGEST', 'CREATED', 'DESCRIPTION'], list.datasets.map((d) => [...versionRow(d.latest).slice(0, 1), String(d.versions), ...versionRow(d.latest).slice(1)])));
          return;
        }
        const list = await ctx.client.call('listDatasetVersions', { params: { name } });
        ctx.out.result(list, () => renderTable(['VERSION', 'ROWS', 'SIZE', 'DIGEST', 'CREATED', 'DESCRIPTION'], list.versions.map(versionRow)));
      }),
    );
  dataset
    .command('show')
    .description('one dataset version (default the latest)')
    .argument('<name[:version]>', 'NAME or NAME:VERSION', parseDatasetRef)
    .action(
      clientAction<[{ name: string; version: string }], object>(io, async (ctx, [ref]) => {
        const v = await ctx.client.call('getDatasetVersion', { params: { name: ref.name, version: ref.version } });
        ctx.out.result(v, () => renderVersion(v));
      }),
    );
  addClientOptions(dataset);
}
