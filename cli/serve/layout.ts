/**
 * The app and model directories a runtime reads, laid out as in a scoring image
 * (hub/builds/build-context.ts): `app/score.<ext>` + `app/schema.json` (+ the app's package.json and
 * node_modules for Node), and `models/NAME/` per model, where a single-file model keeps its base
 * name and a directory model keeps its tree. Models are linked, not copied: they can be large, both
 * runtimes only hand the directory to the scoring code (whose reads follow links), and a link
 * shows the user's changes without laying out again.
 */
import { copyFile, lstat, mkdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Runtime } from '../../shared/api/manifests.js';
import { fileError, inputError } from '../args.js';

/** The scoring file extensions each runtime loads. */
export const SCORE_EXTENSIONS: Record<Runtime, readonly string[]> = { node: ['.js', '.mjs', '.cjs'], python: ['.py'] };

export interface ModelSource {
  name: string;
  /** A file or a directory on this machine. */
  path: string;
}

async function statOf(path: string, what: string) {
  try {
    return await stat(path);
  } catch (err) {
    throw fileError(path, err, what);
  }
}

export function checkScoreFile(runtime: Runtime, score: string): void {
  if (!SCORE_EXTENSIONS[runtime].includes(extname(score))) {
    throw inputError(`--score ${score}: the ${runtime} runtime loads ${SCORE_EXTENSIONS[runtime].map((e) => `score${e}`).join(', ')} (a file ending ${SCORE_EXTENSIONS[runtime].join(', ')})`);
  }
}

/** Whether `link` is already a symbolic link to `to`. */
async function linksTo(link: string, to: string): Promise<boolean> {
  const info = await lstat(link).catch(() => null);
  return info?.isSymbolicLink() === true && (await readlink(link)) === to;
}

/**
 * `models/NAME/…` from a local file or directory, as writeModel lays out the hub's blobs: a
 * directory is linked as `models/NAME`, a file as `models/NAME/<its base name>`. Does nothing when
 * that link is already there.
 */
export async function layoutModel(modelsDir: string, model: ModelSource): Promise<void> {
  const info = await statOf(model.path, `--model ${model.name}=`);
  const from = resolve(model.path);
  const target = join(modelsDir, model.name);
  const link = info.isDirectory() ? target : join(target, basename(from));
  if (await linksTo(link, from)) return;
  await rm(target, { recursive: true, force: true });
  await mkdir(info.isDirectory() ? modelsDir : target, { recursive: true });
  await symlink(from, link, info.isDirectory() ? 'dir' : 'file');
}

/**
 * `app/`: the scoring file as `score<ext>` and the schema document. For Node, the package.json and
 * node_modules beside the scoring file come along (the image has the manifest's dependencies
 * installed there): the package.json is copied, node_modules linked.
 */
export async function layoutApp(appDir: string, opts: { runtime: Runtime; score: string; schema: unknown }): Promise<void> {
  await statOf(opts.score, '--score ');
  await mkdir(appDir, { recursive: true });
  for (const ext of SCORE_EXTENSIONS[opts.runtime]) await rm(join(appDir, `score${ext}`), { force: true });
  await copyFile(opts.score, join(appDir, `score${extname(opts.score)}`));
  await writeFile(join(appDir, 'schema.json'), `${JSON.stringify(opts.schema, null, 2)}\n`);
  if (opts.runtime !== 'node') return;
  const from = dirname(opts.score);
  const pkg = await stat(join(from, 'package.json')).catch(() => null);
  if (pkg?.isFile()) await copyFile(join(from, 'package.json'), join(appDir, 'package.json'));
  const modules = await stat(join(from, 'node_modules')).catch(() => null);
  const link = join(appDir, 'node_modules');
  if (modules?.isDirectory() && !(await stat(link).catch(() => null))) await symlink(join(from, 'node_modules'), link, 'dir');
}
