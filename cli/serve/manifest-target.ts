/**
 * `serve --manifest NAME[:V]`: the manifest version's built image when it has one for this
 * machine's platform (docker run, host network), else its files from the hub run as in files mode.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { Image } from '../../shared/api/images.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { ClientContext } from '../commands/client-command.js';
import { downloadModel } from '../commands/model-download.js';
import { filesTarget } from './files-target.js';
import { HOST, type ServeTarget } from './session.js';

const run = promisify(execFile);

/** Docker's name for this machine's platform. */
export function localPlatform(): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm' } as Record<string, string>)[process.arch] ?? process.arch;
  return `linux/${arch}`;
}

/** The newest succeeded image of this manifest version that has this platform. */
export function pickImage(images: readonly Image[], manifest: ManifestVersion, platform: string): Image | undefined {
  return images
    .filter((i) => i.status === 'succeeded' && i.manifest.version === manifest.version && i.manifest.digest === manifest.digest && i.ref && i.platforms[platform])
    .sort((a, b) => b.id - a.id)[0];
}

export function imageTarget(image: Image, platform: string, env: NodeJS.ProcessEnv): ServeTarget {
  const name = `edgeml-serve-${randomBytes(4).toString('hex')}`;
  const remove = async () => {
    await run('docker', ['rm', '-f', name]).catch(() => undefined);
  };
  return {
    mode: 'image',
    prepare: async () => undefined,
    command(port) {
      return {
        command: 'docker',
        args: ['run', '--rm', '--name', name, '--network', 'host', '--platform', platform, '-e', `HOST=${HOST}`, '-e', `PORT=${port}`, '-e', 'EDGEML_DRAIN_SECONDS=2', image.ref!],
        env,
        label: `the container of image ${image.ref!}`,
      };
    },
    afterStop: remove,
    watch: [],
    dispose: remove,
  };
}

async function fetchText(ctx: ClientContext, m: ManifestVersion, file: 'score' | 'deps'): Promise<string> {
  const download = await ctx.client.call('getManifestFile', { params: { name: m.name, ref: String(m.version), file } });
  const chunks: Buffer[] = [];
  for await (const chunk of download.body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}

/** Downloads the manifest's scoring file, dependency list and models, then serves them as files. */
async function manifestFilesTarget(ctx: ClientContext, m: ManifestVersion, python: string): Promise<ServeTarget> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-serve-manifest-'));
  try {
    const src = join(dir, 'src');
    await mkdir(join(src, 'models'), { recursive: true });
    const score = join(src, m.score.filename);
    await writeFile(score, await fetchText(ctx, m, 'score'));
    const schema = join(src, 'schema.json');
    await writeFile(schema, JSON.stringify(m.schema));
    if (m.deps && m.runtime === 'node') {
      await writeFile(join(src, 'package.json'), await fetchText(ctx, m, 'deps'));
      ctx.io.stderr.write('installing the manifest\'s npm dependencies…\n');
      await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund'], { cwd: src, maxBuffer: 64 * 1024 * 1024 }).catch((err: Error) => {
        throw new EdgemlError(ErrorCodes.CLI_SERVE_FAILED, `npm install of ${m.name}:${m.version}'s ${m.deps!.filename} failed: ${err.message.split('\n')[0]}`, { cause: err });
      });
    } else if (m.deps) {
      ctx.io.stderr.write(`note: ${m.deps.filename} is not installed in files mode: ${python} must already have those packages\n`);
    }
    const models = [];
    for (const model of m.models) {
      // An empty directory: a file model goes in it under its own name, a directory model fills it.
      const into = join(src, 'models', model.name);
      await mkdir(into);
      const got = await downloadModel(ctx, { name: model.name, ref: String(model.version) }, into);
      models.push({ name: model.name, path: got.path });
    }
    const files = await filesTarget({ runtime: m.runtime, score, schema, models, python, env: m.env, watch: false });
    return { ...files, dispose: async () => {
      await files.dispose();
      await rm(dir, { recursive: true, force: true });
    } };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function manifestTarget(ctx: ClientContext, ref: { name: string; version: number | undefined }, python: string): Promise<ServeTarget> {
  const m = await ctx.client.call('getManifestVersion', { params: { name: ref.name, ref: String(ref.version ?? 'latest') } });
  const platform = localPlatform();
  const { images } = await ctx.client.call('listImages', { query: { manifest: m.name, status: 'succeeded' } });
  const image = pickImage(images, m, platform);
  if (image) return imageTarget(image, platform, process.env);
  ctx.io.stderr.write(`${m.name}:${m.version} has no built image for ${platform}: serving its files with the ${m.runtime} runtime\n`);
  return manifestFilesTarget(ctx, m, python);
}
