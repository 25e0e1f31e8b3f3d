/**
 * A trainer's image: the runtime base image, the recipe's dependencies (installed as for a scoring
 * image), and the training script, run once as the container's command. Built for the hub's own
 * platform only: training runs on the hub's Docker.
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Runtime } from '../../shared/api/manifests.js';
import type { TrainerVersion } from '../../shared/api/trainers.js';
import { makeWorldReadable, writeDeps } from '../builds/build-context.js';
import { CONTEXT, depsLayers, envLines, labelLines, runtimeEnv } from '../builds/dockerfile.js';
import type { BlobStore } from '../store/blob-store.js';

/** Where the trainer lives in its image. */
const TRAINER_DIR = '/opt/edgeml/trainer';

/** Docker's name for the platform this hub runs on (its CPU), e.g. `linux/amd64`. */
export function hubPlatform(arch: string = process.arch): string {
  const docker: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm' };
  return `linux/${docker[arch] ?? arch}`;
}

/** The runtimes start `train.<ext>`; the recipe keeps the user's own file name. */
export function trainScriptName(filename: string): string {
  return `train${extname(filename)}`;
}

export interface TrainerRecipe {
  runtime: Runtime;
  baseImage: string;
  /** The script's name in the image (`train.js`, `train.mjs`, `train.py`). */
  script: string;
  env: Record<string, string>;
  labels: Record<string, string>;
}

function trainerLabels(trainer: Pick<TrainerVersion, 'name' | 'version' | 'digest' | 'runtime' | 'description'>): Record<string, string> {
  return {
    'org.opencontainers.image.title': `trainer-${trainer.name}`,
    'org.opencontainers.image.version': String(trainer.version),
    'org.opencontainers.image.description': trainer.description || `edgeml trainer ${trainer.name}:${trainer.version}`,
    'io.edgeml.trainer': `${trainer.name}:${trainer.version}`,
    'io.edgeml.trainer.digest': trainer.digest,
    'io.edgeml.runtime': trainer.runtime,
  };
}

export function renderTrainerDockerfile(recipe: TrainerRecipe): string {
  const command = recipe.runtime === 'node' ? ['node', `${TRAINER_DIR}/${recipe.script}`] : ['python3', `${TRAINER_DIR}/${recipe.script}`];
  return [
    `ARG BASE_IMAGE=${recipe.baseImage}`,
    'FROM ${BASE_IMAGE}',
    'ARG TARGETARCH',
    ...envLines(runtimeEnv(recipe.runtime)),
    ...depsLayers(recipe.runtime, TRAINER_DIR),
    `COPY ${CONTEXT.app}/ ${TRAINER_DIR}/`,
    ...envLines(recipe.env),
    ...labelLines(recipe.labels),
    `WORKDIR ${TRAINER_DIR}`,
    // Exec form: the script is PID 1, so a kill reaches it directly.
    `CMD ${JSON.stringify(command)}`,
    // The runner starts it as the hub's user (so the output is the hub's); this is the default otherwise.
    'USER 65534:65534',
    '',
  ].join('\n');
}

export interface TrainerContextInputs {
  trainer: TrainerVersion;
  platform: string;
  baseImage: string;
  blobs: BlobStore;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
}

export async function writeTrainerContext(dir: string, inputs: TrainerContextInputs): Promise<void> {
  const { trainer, blobs } = inputs;
  await mkdir(join(dir, CONTEXT.app), { recursive: true });
  await writeDeps(dir, { runtime: trainer.runtime, deps: trainer.deps, platforms: [inputs.platform], blobs, log: inputs.log, signal: inputs.signal });
  const script = trainScriptName(trainer.train.filename);
  await cp(blobs.path(trainer.train.digest), join(dir, CONTEXT.app, script));
  await makeWorldReadable(dir);
  const dockerfile = renderTrainerDockerfile({ runtime: trainer.runtime, baseImage: inputs.baseImage, script, env: trainer.env, labels: trainerLabels(trainer) });
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, '.dockerignore'), '');
}
