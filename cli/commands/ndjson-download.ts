/**
 * A streaming NDJSON download from the hub (capture and dataset exports): into FILE through a hidden
 * sibling renamed into place once complete, or to stdout, with progress on stderr.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Download } from '../../client/hub-client.js';
import { MODEL_FILTER_PATTERN } from '../../shared/api/telemetry.js';
import { formatBytes } from '../../shared/size.js';
import { fileError, inputError } from '../args.js';
import type { ClientContext } from './client-command.js';

const PROGRESS_EVERY_MS = 500;

/** `--model NAME` or `NAME:VERSION`, as the export routes filter by. */
export function parseModelFilter(text: string): string {
  if (!new RegExp(MODEL_FILTER_PATTERN).test(text)) throw inputError(`--model ${JSON.stringify(text)}: expected NAME or NAME:VERSION, e.g. iris or iris:3`);
  return text;
}

/** Counts lines and bytes as they pass, reporting them now and then. */
function lineMeter(report: (lines: number, bytes: number) => void) {
  const counts = { lines: 0, bytes: 0 };
  let last = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      counts.bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) counts.lines++;
      if (Date.now() - last >= PROGRESS_EVERY_MS) {
        last = Date.now();
        report(counts.lines, counts.bytes);
      }
      done(null, chunk);
    },
  });
  return { stream, counts };
}

/** What an NDJSON download is: the hub operation that answers it, and how progress names it ("exporting iris", "rows"). */
export interface NdjsonDownload {
  request: () => Promise<Download>;
  label: string;
  unit: string;
}

/** Streams an NDJSON answer into `sink`, with progress (lines written, bytes) on stderr. */
async function downloadTo(ctx: ClientContext, what: NdjsonDownload, sink: Writable): Promise<{ lines: number; bytes: number }> {
  const download = await what.request();
  const report = (lines: number, bytes: number) => {
    if (ctx.showProgress) ctx.io.stderr.write(`\r${what.label}: ${lines} ${what.unit} written, ${formatBytes(bytes)}`);
  };
  const { stream, counts } = lineMeter(report);
  try {
    await pipeline(download.body, stream, sink, { signal: ctx.signal });
  } finally {
    report(counts.lines, counts.bytes);
    if (ctx.showProgress) ctx.io.stderr.write('\n');
  }
  return counts;
}

/**
 * Downloads NDJSON into FILE (relative to the working directory) through a hidden sibling on the
 * same filesystem, renamed into place once complete (an interrupted download leaves nothing), or
 * to stdout for `-` (`out` is then '-').
 */
export async function downloadNdjson(ctx: ClientContext, what: NdjsonDownload, out: string): Promise<{ lines: number; bytes: number; out: string }> {
  if (out === '-') return { ...(await downloadTo(ctx, what, ctx.io.stdout)), out };
  const target = resolve(ctx.io.cwd, out);
  const partial = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.partial`);
  try {
    const counts = await downloadTo(ctx, what, createWriteStream(partial, { flags: 'wx' }));
    await rename(partial, target);
    return { ...counts, out: target };
  } catch (err) {
    await rm(partial, { force: true });
    throw fileError(target, err);
  }
}
