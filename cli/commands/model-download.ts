/**
 * `model download`: fetches a version's bytes into a temporary file next to the destination,
 * checks them against the version's digest, and only then renames the file (or extracts the
 * directory) into place. Whatever goes wrong, including Ctrl-C, leaves no partial output behind.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { ModelVersion } from '../../shared/api/models.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { formatBytes } from '../../shared/size.js';
import { fileError, formatModelRef, inputError, type ModelRef } from '../args.js';
import { createTransferProgress } from '../progress.js';
import type { ClientContext } from './client-command.js';
import { DigestMeter } from './digest.js';

export interface DownloadResult {
  name: string;
  version: number;
  kind: ModelVersion['kind'];
  digest: string;
  size: number;
  path: string;
}

async function statOrNull(path: string) {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
}

/** Where a file model goes: `--out FILE`, `--out DIR/` + its name, or its name in the cwd. */
async function fileTarget(v: ModelVersion, out: string | undefined, cwd: string): Promise<string> {
  const filename = v.files[0]?.path;
  // The name comes from the hub: never let it point outside the chosen directory.
  if (!filename || filename !== basename(filename) || filename === '.' || filename === '..') {
    throw new EdgemlError(ErrorCodes.INTERNAL, `the hub gave ${v.name}:${v.version} an unusable file name ${JSON.stringify(filename)}`);
  }
  const chosen = out === undefined ? join(cwd, filename) : resolve(cwd, out);
  const target = (await statOrNull(chosen))?.isDirectory() ? join(chosen, filename) : chosen;
  if (await statOrNull(target)) throw inputError(`${target} already exists; remove it or choose another path with --out`);
  return target;
}

/** Where a directory model goes: `--out DIR` or `NAME-VERSION` in the cwd, missing or empty. */
async function directoryTarget(v: ModelVersion, out: string | undefined, cwd: string): Promise<string> {
  const target = resolve(cwd, out ?? `${v.name}-${v.version}`);
  const info = await statOrNull(target);
  if (info && (!info.isDirectory() || (await readdir(target)).length > 0)) {
    throw inputError(`${target} already exists${info.isDirectory() ? ' and is not empty' : ''}; remove it or choose another path with --out`);
  }
  return target;
}

/** A hidden sibling of `target`: same filesystem, so the final rename is atomic. */
function partialPath(target: string, suffix = ''): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.partial${suffix}`);
}

/** Streams the version's content into `dest` and returns its digest. */
async function fetchContent(ctx: ClientContext, v: ModelVersion, dest: string): Promise<string> {
  const download = await ctx.client.call('getModelContent', { params: { name: v.name, ref: String(v.version) } });
  const progress = await createTransferProgress({
    enabled: ctx.showProgress,
    label: `downloading ${v.name}:${v.version}`,
    total: download.length,
    stream: ctx.io.stderr,
  });
  const meter = new DigestMeter(progress.update);
  try {
    await pipeline(download.body, meter, createWriteStream(dest, { flags: 'wx' }), { signal: ctx.signal });
  } finally {
    progress.stop();
  }
  return meter.digest();
}

function checkDigest(v: ModelVersion, actual: string): void {
  if (actual !== v.digest) {
    throw new EdgemlError(
      ErrorCodes.HUB_DIGEST_MISMATCH,
      `the bytes downloaded for ${v.name}:${v.version} hash to ${actual}, not ${v.digest}; nothing was written`,
      { details: { expected: v.digest, actual } },
    );
  }
}

async function extract(v: ModelVersion, archive: string, target: string): Promise<void> {
  const { extractArchive } = await import('../../shared/archive/index.js');
  const staging = partialPath(target);
  try {
    // The bytes match the digest the hub recorded after checking this archive against its own
    // limits, so no second limit here: one the hub does not share could refuse a valid model.
    await extractArchive(createReadStream(archive), staging, { maxFiles: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER });
    if (await statOrNull(target)) await rmdir(target); // checked empty above; rename needs it gone
    await rename(staging, target);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

export async function downloadModel(ctx: ClientContext, ref: ModelRef, out: string | undefined): Promise<DownloadResult> {
  const v = await ctx.client.call('getModelVersion', { params: { name: ref.name, ref: ref.ref ?? 'latest' } });
  // The default directory name is built from the answer: it must be the model that was asked for.
  if (v.name !== ref.name) throw new EdgemlError(ErrorCodes.INTERNAL, `asked the hub for ${ref.name} and it answered with ${JSON.stringify(v.name)}`);
  const target = v.kind === 'file' ? await fileTarget(v, out, ctx.io.cwd) : await directoryTarget(v, out, ctx.io.cwd);
  if (!(await statOrNull(dirname(target)))?.isDirectory()) throw inputError(`${dirname(target)}: no such directory (for --out)`);
  const partial = partialPath(target, v.kind === 'directory' ? '.tar' : '');
  try {
    checkDigest(v, await fetchContent(ctx, v, partial));
    if (v.kind === 'file') {
      if (await statOrNull(target)) throw inputError(`${target} appeared during the download; the download was discarded`);
      await rename(partial, target);
    } else {
      await extract(v, partial, target);
    }
  } catch (err) {
    throw fileError(target, err);
  } finally {
    await rm(partial, { force: true });
  }
  return { name: v.name, version: v.version, kind: v.kind, digest: v.digest, size: v.size, path: target };
}

export function renderDownloaded(r: DownloadResult, ref: ModelRef): string {
  const alias = ref.ref?.startsWith('@') ? ` (${formatModelRef(ref)})` : '';
  return `downloaded ${r.name}:${r.version}${alias} to ${r.path}  ${r.digest}  ${formatBytes(r.size)}`;
}
