/**
 * Writes the build context of a scoring image into a directory: the runtime server (with its own
 * pure-JavaScript dependencies vendored from the hub's installation), the manifest's dependencies
 * installed on this host for each target platform, the scoring script and schema, and the model
 * files unpacked from the blob store.
 */
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import type { ManifestVersion, Runtime } from '../../shared/api/manifests.js';
import type { ModelVersion } from '../../shared/api/models.js';
import { extractArchive } from '../../shared/archive/index.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { edgemlPackageRoot } from '../../shared/version.js';
import type { BlobStore } from '../store/blob-store.js';
import { CONTEXT, imageLabels, renderDockerfile } from './dockerfile.js';

/** npm's name for a Docker platform's CPU (`--cpu`), keyed by buildx's TARGETARCH. */
const NPM_CPU: Record<string, string> = { amd64: 'x64', arm64: 'arm64', arm: 'arm' };

export function targetArch(platform: string): string {
  return platform.split('/')[1] ?? platform;
}

export interface ContextInputs {
  manifest: ManifestVersion;
  /** The model versions the manifest pins, in its order. */
  models: ModelVersion[];
  platforms: string[];
  baseImage: string;
  blobs: BlobStore;
  /** Appends a line to the build log. */
  log: (line: string) => void;
  signal?: AbortSignal;
}

function run(command: string, args: string[], cwd: string, log: (line: string) => void, signal?: AbortSignal | undefined): Promise<void> {
  log(`$ ${command} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, signal, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } }, (err, stdout, stderr) => {
      for (const line of `${stdout}${stderr}`.split('\n')) if (line.trim()) log(line);
      if (err) reject(new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, `${command} ${args[0] ?? ''} failed: ${err.message.split('\n')[0]}`, { cause: err }));
      else resolve();
    });
  });
}

/** A package and everything it depends on at run time, as installed next to the hub. */
async function vendorPackage(name: string, into: string, from: string, seen: Set<string>): Promise<void> {
  if (seen.has(name)) return;
  seen.add(name);
  const manifestPath = createRequire(join(from, 'noop.js')).resolve(`${name}/package.json`);
  const dir = dirname(manifestPath);
  await cp(dir, join(into, name), { recursive: true, dereference: true, filter: (src) => !src.slice(dir.length).includes('/node_modules/') });
  const pkg = JSON.parse(await readFile(manifestPath, 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies ?? {})) await vendorPackage(dep, into, dir, seen);
}

async function writeRuntime(dir: string, manifest: ManifestVersion): Promise<void> {
  const source = join(edgemlPackageRoot(), 'images', `runtime-${manifest.runtime}`);
  await cp(source, join(dir, CONTEXT.runtime), {
    recursive: true,
    filter: (src) => !/\/(node_modules|__pycache__)(\/|$)/.test(src.slice(source.length)),
  });
  if (manifest.runtime !== 'node') return;
  const pkg = JSON.parse(await readFile(join(source, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const seen = new Set<string>();
  for (const name of Object.keys(pkg.dependencies ?? {})) await vendorPackage(name, join(dir, CONTEXT.runtime, 'node_modules'), source, seen);
}

/**
 * Prebuilt binaries for other platforms in the `bin/napi-v*\/<os>/<cpu>` layout (onnxruntime-node
 * ships all of them, ~220 MB): an image carries only its own.
 */
async function pruneForeignBinaries(nodeModules: string, cpu: string): Promise<void> {
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 4) return;
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name);
      if (/^napi-v\d+$/.test(entry.name)) {
        for (const os of await readdir(path)) {
          if (os !== 'linux') await rm(join(path, os), { recursive: true, force: true });
          else for (const arch of await readdir(join(path, os))) if (arch !== cpu) await rm(join(path, os, arch), { recursive: true, force: true });
        }
      } else {
        await walk(path, depth + 1);
      }
    }
  };
  await walk(nodeModules, 0);
}

/** A recipe's dependency list (scoring manifest or trainer), installed into a build context. */
export interface DepsInputs {
  runtime: Runtime;
  /** package.json or requirements.txt in the blob store; null: none. */
  deps: { digest: string } | null;
  platforms: string[];
  blobs: BlobStore;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
}

/** `deps/<TARGETARCH>/node_modules` for each platform, or `deps/requirements.txt` (see depsLayers). */
export async function writeDeps(dir: string, inputs: DepsInputs): Promise<void> {
  const { runtime, blobs, log, signal } = inputs;
  const depsDir = join(dir, CONTEXT.deps);
  const content = inputs.deps ? await readFile(blobs.path(inputs.deps.digest)) : undefined;
  if (runtime === 'python') {
    await mkdir(depsDir, { recursive: true });
    await writeFile(join(depsDir, 'requirements.txt'), content ?? '');
    return;
  }
  for (const arch of new Set(inputs.platforms.map(targetArch))) {
    const archDir = join(depsDir, arch);
    await mkdir(archDir, { recursive: true });
    if (!content) continue;
    const cpu = NPM_CPU[arch];
    if (!cpu) throw new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, `no npm CPU name for platform architecture ${arch}`);
    await writeFile(join(archDir, 'package.json'), content);
    // On this host, where npm and the registry are (inside an emulated build they are not), with
    // npm choosing the optional platform packages of the target. No install scripts: they would
    // run for the host, not the target.
    await run('npm', ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--os=linux', `--cpu=${cpu}`], archDir, log, signal);
    await pruneForeignBinaries(join(archDir, 'node_modules'), cpu);
  }
}

async function writeApp(dir: string, inputs: ContextInputs): Promise<void> {
  const { manifest, blobs } = inputs;
  const appDir = join(dir, CONTEXT.app);
  await mkdir(appDir, { recursive: true });
  // The runtimes load `score.<ext>`; the manifest keeps the user's own file name.
  await cp(blobs.path(manifest.score.digest), join(appDir, `score${extname(manifest.score.filename)}`));
  await writeFile(join(appDir, 'schema.json'), `${JSON.stringify(manifest.schema, null, 2)}\n`);
}

/** One model's files in `modelsDir/NAME/`, as the scoring runtime finds them under EDGEML_MODEL_DIR. */
export async function writeModel(blobs: BlobStore, model: ModelVersion, modelsDir: string): Promise<void> {
  const target = join(modelsDir, model.name);
  if (model.kind === 'file') {
    await mkdir(target, { recursive: true });
    await cp(blobs.path(model.digest), join(target, model.files[0]!.path));
  } else {
    // The hub checked this archive entry by entry at upload; extraction applies the same rules.
    await extractArchive(blobs.openRead(model.digest), target, { maxFiles: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER });
  }
}

async function writeModels(dir: string, inputs: ContextInputs): Promise<void> {
  const modelsDir = join(dir, CONTEXT.models);
  await mkdir(modelsDir, { recursive: true });
  for (const model of inputs.models) await writeModel(inputs.blobs, model, modelsDir);
}

/**
 * Blobs are private to the hub (0600); in the image everything must be readable by the
 * unprivileged user the server runs as. Executable bits are kept.
 */
export async function makeWorldReadable(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await chmod(path, 0o755);
      await makeWorldReadable(path);
    } else if (entry.isFile()) {
      const { mode } = await stat(path);
      await chmod(path, mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

export async function writeBuildContext(dir: string, inputs: ContextInputs): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeRuntime(dir, inputs.manifest);
  await writeDeps(dir, { runtime: inputs.manifest.runtime, deps: inputs.manifest.deps, platforms: inputs.platforms, blobs: inputs.blobs, log: inputs.log, signal: inputs.signal });
  await writeApp(dir, inputs);
  await writeModels(dir, inputs);
  await makeWorldReadable(dir);
  const dockerfile = renderDockerfile({ runtime: inputs.manifest.runtime, baseImage: inputs.baseImage, env: inputs.manifest.env, labels: imageLabels(inputs.manifest) });
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, '.dockerignore'), '');
}
