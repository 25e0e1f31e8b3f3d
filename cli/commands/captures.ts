/**
 * `edgeml capture export SERVICE --since 24h --out FILE.jsonl`: the captured requests and answers
 * of a service, one JSON sample per line, for retraining. The hub streams them and so does this
 * command: into a hidden file next to FILE, renamed into place only once the export is complete
 * (an interrupted export leaves nothing behind), or to stdout with `--out -`.
 */
import type { Command } from 'commander';
import { formatBytes } from '../../shared/size.js';
import { parseDeviceId } from '../args.js';
import { addClientOptions, clientAction, type ClientContext, type CliIo } from './client-command.js';
import { downloadNdjson, parseModelFilter } from './ndjson-download.js';
import { parseService } from './deployments.js';
import { windowQuery, withWindowOptions, type WindowFlags } from './telemetry.js';

export interface ExportSummary {
  service: string;
  samples: number;
  bytes: number;
  out: string;
}

interface ExportFlags extends WindowFlags {
  device?: string;
  model?: string;
  out: string;
}

async function exportSamples(ctx: ClientContext, service: string, flags: ExportFlags): Promise<ExportSummary> {
  const query = { ...windowQuery(flags), device: flags.device, model: flags.model };
  const request = () => ctx.client.call('exportCaptures', { params: { service }, query });
  const { lines, bytes, out } = await downloadNdjson(ctx, { request, label: `exporting ${service}`, unit: 'samples' }, flags.out);
  return { service, samples: lines, bytes, out };
}

export function addCaptureCommands(program: Command, io: CliIo): void {
  const capture = program.command('capture').description('captured scoring requests and answers (sampled at the deployment’s capture rate)');
  const exportCommand = capture
    .command('export')
    .description('write a service’s captured samples to a JSONL file, one sample (with its device) per line')
    .argument('<service>', 'service name', parseService)
    .requiredOption('--out <file>', 'the JSONL file to write (replaced if it exists), or - for stdout')
    .option('--device <id>', 'only samples from this device', parseDeviceId('--device'))
    .option('--model <name[:version]>', 'only samples scored by this model, or this version of it', parseModelFilter);
  withWindowOptions(exportCommand).action(
    clientAction<[string], ExportFlags>(io, async (ctx, [service], flags) => {
      const summary = await exportSamples(ctx, service, flags);
      if (flags.out !== '-') {
        ctx.out.result(summary, () => `exported ${summary.samples} samples (${formatBytes(summary.bytes)}) of ${service} to ${summary.out}`);
        return;
      }
      // stdout carries the samples: the summary goes to stderr.
      ctx.io.stderr.write(ctx.out.json ? `${JSON.stringify(summary)}\n` : `exported ${summary.samples} samples (${formatBytes(summary.bytes)}) of ${service}\n`);
    }),
  );
  addClientOptions(capture);
}
