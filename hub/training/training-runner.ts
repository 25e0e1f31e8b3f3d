/**
 * Runs a trainer image once on the hub's Docker (the trainer contract, images/README.md): no
 * network, memory and CPU limits, the data and the current model mounted read-only, an output
 * directory the script writes the new model into. The container gets only the contract's variables
 * (a trainer's own `--env` values are baked into its image) — nothing from the hub's environment,
 * so no secret. It runs as the hub's user, so it reads the hub-private data files and what it
 * writes is the hub's.
 *
 * Every container is labelled with the hub instance: a hub killed mid-training removes what it
 * left at its next start (removeTrainingLeftovers); the run itself is failed or re-run by its owner.
 */
import { mkdir } from 'node:fs/promises';
import type { ModelVersion } from '../../shared/api/models.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { docker, removeContainer } from '../builds/docker-cli.js';
import { removeContainersLabelled } from '../builds/leftovers.js';
import { makeWorldReadable, writeModel } from '../builds/build-context.js';
import type { BlobStore } from '../store/blob-store.js';

export interface TrainingRequest {
  /** Unique; names the container. */
  runId: string;
  /** `repository@sha256:…` */
  image: string;
  /** Host paths of JSONL files. */
  trainData: string;
  evalData: string;
  /** Host directory laid out as in a scoring image: `NAME/…` (layOutModel). */
  modelDir: string;
  /** Host directory, empty, writable by the container. */
  outputDir: string;
  params: Record<string, unknown>;
  /** The hub instance, as the container's label (removeTrainingLeftovers). */
  instance: string;
  /** Docker's `--memory`, e.g. `1g`. */
  memory: string;
  cpus: number;
  timeoutMs: number;
  /** Each line the script prints, prefixed with SCRIPT_LINE_PREFIX. */
  log: (line: string) => void;
  /** The runner's own lines (a timeout, a cancel), without a prefix; default: `log('edgeml: ' + text)`. */
  note?: (text: string) => void;
  signal: AbortSignal;
}

/**
 * How a line of the script's output starts in the log, so that nothing a script prints reads as
 * one of the hub's own `edgeml: …` lines.
 */
export const SCRIPT_LINE_PREFIX = '[train] ';

export interface TrainingResult {
  status: 'succeeded' | 'failed' | 'timed-out' | 'cancelled';
  exitCode: number | null;
  message: string;
}

/** Marks a training container with the hub instance that started it. */
export const TRAINING_LABEL = 'io.edgeml.training.hub';

/** Where the contract's files are inside the container. */
const TRAINING_PATHS = {
  trainData: '/edgeml/data/train.jsonl',
  evalData: '/edgeml/data/eval.jsonl',
  modelDir: '/edgeml/model',
  outputDir: '/edgeml/output',
} as const;

const STOP_RETRY_MS = 1000;

/** Docker's own exit codes for a container that never ran the script. */
const DOCKER_RUN_FAILED = new Set([125, 126, 127]);

export function containerName(runId: string): string {
  return `edgeml-train-${runId.replace(/[^A-Za-z0-9_.-]/g, '-')}`;
}

/** The `docker run` arguments of a request (without the leading `docker`). */
export function trainingRunArgs(req: TrainingRequest, user: string): string[] {
  const env = {
    EDGEML_TRAIN_DATA: TRAINING_PATHS.trainData,
    EDGEML_EVAL_DATA: TRAINING_PATHS.evalData,
    EDGEML_MODEL_DIR: TRAINING_PATHS.modelDir,
    EDGEML_OUTPUT_DIR: TRAINING_PATHS.outputDir,
    EDGEML_PARAMS: JSON.stringify(req.params),
  };
  const mount = (source: string, target: string, readonly: boolean) => ['--mount', `type=bind,source=${source},target=${target}${readonly ? ',readonly' : ''}`];
  return [
    'run',
    '--name', containerName(req.runId),
    '--label', `${TRAINING_LABEL}=${req.instance}`,
    '--network', 'none',
    '--memory', req.memory,
    // No swap beyond the memory limit: the limit is what the script gets.
    '--memory-swap', req.memory,
    '--cpus', String(req.cpus),
    '--pids-limit', '512',
    '--user', user,
    '--security-opt', 'no-new-privileges',
    '--cap-drop', 'ALL',
    ...mount(req.trainData, TRAINING_PATHS.trainData, true),
    ...mount(req.evalData, TRAINING_PATHS.evalData, true),
    ...mount(req.modelDir, TRAINING_PATHS.modelDir, true),
    ...mount(req.outputDir, TRAINING_PATHS.outputDir, false),
    ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    req.image,
  ];
}

function hubUser(): string {
  return `${process.getuid?.() ?? 65534}:${process.getgid?.() ?? 65534}`;
}

/** The request's hub instance, else the one markBuildProcesses set for everything the hub starts. */

/**
 * Runs the script to its end, streaming its output line by line to `log`. A cancel (`signal`) or
 * the timeout removes the container at once (a script need not handle signals to be stopped).
 */
export async function runTraining(req: TrainingRequest): Promise<TrainingResult> {
  const name = containerName(req.runId);
  let stopped: 'cancelled' | 'timed-out' | undefined;
  let exited = false;
  const stop = async (why: 'cancelled' | 'timed-out') => {
    if (stopped) return;
    stopped = why;
    const note = req.note ?? ((text: string) => req.log(`edgeml: ${text}`));
    note(`training ${why === 'cancelled' ? 'cancelled' : `timed out after ${Math.round(req.timeoutMs / 1000)} s`}; removing the container`);
    // Until `docker run` returns: a stop that comes while the container is being created must still get it.
    while (!exited) {
      await removeContainer(name);
      if (!exited) await sleep(STOP_RETRY_MS);
    }
  };
  if (req.signal.aborted) return { status: 'cancelled', exitCode: null, message: 'cancelled before it started' };
  await removeContainer(name);
  const onAbort = () => void stop('cancelled');
  req.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => void stop('timed-out'), req.timeoutMs);
  const tail: string[] = [];
  try {
    const code = await docker(trainingRunArgs(req, hubUser()), (line) => {
      tail.push(line);
      if (tail.length > 5) tail.shift();
      req.log(`${SCRIPT_LINE_PREFIX}${line}`);
    }).finally(() => {
      exited = true;
    });
    if (stopped === 'cancelled') return { status: 'cancelled', exitCode: null, message: 'cancelled while it was running' };
    if (stopped === 'timed-out') return { status: 'timed-out', exitCode: null, message: `did not finish within ${Math.round(req.timeoutMs / 1000)} s` };
    if (code === 0) return { status: 'succeeded', exitCode: 0, message: 'the training script exited 0' };
    if (DOCKER_RUN_FAILED.has(code)) return { status: 'failed', exitCode: code, message: `docker run failed (exit ${code}): ${tail.join(' | ')}` };
    return { status: 'failed', exitCode: code, message: `the training script exited with code ${code}${code === 137 ? ' (killed: out of memory?)' : ''}` };
  } finally {
    clearTimeout(timer);
    req.signal.removeEventListener('abort', onAbort);
    await removeContainer(name);
  }
}

/** Removes the training containers an earlier run of this hub instance left; returns how many. */
export function removeTrainingLeftovers(hubInstance: string): Promise<number> {
  return removeContainersLabelled(TRAINING_LABEL, hubInstance);
}

/** The model's files in `dir/NAME/…`, exactly as in a scoring image, readable by the container. */
export async function layOutModel(blobs: BlobStore, model: ModelVersion, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeModel(blobs, model, dir);
  await makeWorldReadable(dir);
}
