/**
 * `edgeml capture export SERVICE --since 24h --out FILE.jsonl`: the captured requests and answers
 * of a service, one JSON sample per line, for retraining. The hub streams them and so does this
 * command: into a hidden file next to FILE, renamed into place only once the export is complete
 * (an interrupted export leaves nothing behind), or to stdout with `--out -`.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { MODEL_FILTER_PATTERN } from '../../shared/api/telemetry.js';
import { formatBytes } from '../../shared/size.js';
import { fileError, inputError, parseDeviceId } from '../args.js';
import { apiPath } from '../hub-client.js';
import { addClientOptions, clientAction, type ClientContext, type CliIo } from './client-command.js';
import { parseService } from './deployments.js';
import { withWindowOptions, type WindowFlags } from './telemetry.js';

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

const PROGRESS_EVERY_MS = 500;

function parseModelFilter(text: string): string {
  if (!new RegExp(MODEL_FILTER_PATTERN).test(text)) throw inputError(`--model ${JSON.stringify(text)}: expected NAME or NAME:VERSION, e.g. iris or iris:3`);
  return text;
}

/** Counts lines and bytes as they pass, and reports them now and then. */
function meter(onProgress: (samples: number, bytes: number) => void) {
  const counts = { samples: 0, bytes: 0 };
  let last = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      counts.bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) counts.samples++;
      const now = Date.now();
      if (now - last >= PROGRESS_EVERY_MS) {
        last = now;
        onProgress(counts.samples, counts.bytes);
      }
      done(null, chunk);
    },
  });
  return { stream, counts };
}

async function exportTo(ctx: ClientContext, service: string, flags: ExportFlags, sink: Writable): Promise<{ samples: number; bytes: number }> {
  const query = new URLSearchParams();
  for (const key of ['since', 'until', 'device', 'model'] as const) if (flags[key] !== undefined) query.set(key, flags[key]);
  const download = await ctx.client.download(`${apiPath('captures', service)}?${query}`);
  const progress = (samples: number, bytes: number) => {
    if (ctx.showProgress) ctx.io.stderr.write(`\rexporting ${service}: ${samples} samples, ${formatBytes(bytes)}`);
  };
  const { stream, counts } = meter(progress);
  try {
    await pipeline(download.body, stream, sink, { signal: ctx.signal });
  } finally {
    progress(counts.samples, counts.bytes);
    if (ctx.showProgress) ctx.io.stderr.write('\n');
  }
  return counts;
}

/** Writes into a hidden sibling of `target` (same filesystem: the rename is atomic), replacing `target` at the end. */
async function exportToFile(ctx: ClientContext, service: string, flags: ExportFlags): Promise<ExportSummary> {
  const target = resolve(ctx.io.cwd, flags.out);
  const partial = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.partial`);
  try {
    const counts = await exportTo(ctx, service, flags, createWriteStream(partial, { flags: 'wx' }));
    await rename(partial, target);
    return { service, ...counts, out: target };
  } catch (err) {
    await rm(partial, { force: true });
    throw fileError(target, err);
  }
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
      if (flags.out !== '-') {
        const summary = await exportToFile(ctx, service, flags);
        ctx.out.result(summary, () => `exported ${summary.samples} samples (${formatBytes(summary.bytes)}) of ${service} to ${summary.out}`);
        return;
      }
      // stdout carries the samples: the summary goes to stderr.
      const counts = await exportTo(ctx, service, flags, ctx.io.stdout);
      const summary: ExportSummary = { service, ...counts, out: '-' };
      ctx.io.stderr.write(ctx.out.json ? `${JSON.stringify(summary)}\n` : `exported ${summary.samples} samples (${formatBytes(summary.bytes)}) of ${service}\n`);
    }),
  );
  addClientOptions(capture);
}
