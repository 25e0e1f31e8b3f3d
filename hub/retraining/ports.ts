/**
 * The run pipeline's ports bound to the hub's modules: labelled data and datasets, the trainer
 * registry and runner, the model registry (the candidate registered with its lineage), the
 * one-command model update (candidate image, rollout) and the evaluation on the hub's platform.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lineage, ModelVersion } from '../../shared/api/models.js';
import type { RolloutRequest } from '../../shared/api/rollouts.js';
import { packDirectory } from '../../shared/archive/index.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { LabelledData } from '../datasets/labelled-data.js';
import { evaluateImage } from '../evaluation/evaluate.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { parseVersionRef } from '../registry/model-ref.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ActorRecord, HubStore } from '../store/store.js';
import type { TrainerRegistry } from '../training/trainer-registry.js';
import { hubPlatform } from '../training/trainer-image.js';
import { layOutModel, runTraining } from '../training/training-runner.js';
import type { RunPorts } from './run-pipeline.js';

/** What the pipeline needs of the one-command model update (hub/fleet/model-update.ts). */
export interface ModelUpdater {
  /** `signal` cancels the wait for (and the build of) the candidate's image. */
  prepare(service: string, model: string, actor: ActorRecord, signal?: AbortSignal): Promise<{ image: { id: number; ref: string | null } }>;
  rollOut(service: string, imageId: number, rollout: RolloutRequest | undefined, actor: ActorRecord): Promise<{ rollout: { id: number } }>;
}

export interface HubRunPortsDeps {
  store: HubStore;
  blobs: BlobStore;
  clock: Clock;
  labelled: LabelledData;
  /** What the pipeline needs of the dataset registry (hub/datasets). */
  datasets: RunPorts['datasets'];
  trainers: TrainerRegistry;
  updates: ModelUpdater;
  limits: { maxUploadBytes: number; maxArchiveFiles: number };
  instance: string;
  /** One evaluation: the image's start and every eval row. */
  evalTimeoutMs: number;
}

/**
 * What the trainer wrote, as `edgeml model register` takes it: one regular file is a single-file
 * model keeping its name, anything else the directory.
 */
async function outputSource(dir: string): Promise<{ kind: 'file' | 'directory'; filename?: string; open: () => AsyncIterable<Uint8Array> }> {
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.length === 0) throw new EdgemlError(ErrorCodes.HUB_RETRAINING_FAILED, 'the trainer exited 0 but wrote nothing to EDGEML_OUTPUT_DIR');
  const only = entries.length === 1 ? entries[0]! : undefined;
  if (only?.isFile()) return { kind: 'file', filename: only.name, open: () => createReadStream(join(dir, only.name)) };
  return { kind: 'directory', open: () => packDirectory(dir) };
}

export function hubRunPorts(deps: HubRunPortsDeps): RunPorts {
  const { store } = deps;
  return {
    labelled: deps.labelled,
    datasets: deps.datasets,
    trainer: async (ref, signal) => {
      const { name, selector } = parseVersionRef(ref);
      const version = await deps.trainers.resolve(name, selector);
      const built = await deps.trainers.waitForImage(version.name, version.version, signal);
      if (!built.image.ref) throw new EdgemlError(ErrorCodes.HUB_RETRAINING_FAILED, `trainer ${built.name}:${built.version} has no image`);
      return { name: built.name, version: built.version, image: built.image.ref };
    },
    deployment: async (service) => store.deployments.get(service),
    model: (name, version) => store.models.resolve(name, { version }),
    registered: async (name, job, run) => {
      const found = (await store.models.list({ name })).find((m) => m.lineage.job === job && m.lineage.run === run);
      return found && { name: found.name, version: found.version };
    },
    layOutModel: (model, dir) => layOutModel(deps.blobs, model, dir),
    runTraining: (call) => runTraining({ ...call, instance: deps.instance }),
    registerCandidate: async (name, dir, lineage, actor): Promise<ModelVersion> => {
      const parent = lineage.parent ? await store.models.resolve(lineage.parent.name, { version: lineage.parent.version }) : undefined;
      const source = await outputSource(dir);
      // The registry builds the stored lineage from upload metadata; the retraining fields join it in the same write.
      const extra: Partial<Lineage> = { ...lineage };
      delete extra.runId;
      const registry = new ModelRegistry({
        models: { ...store.models, addVersion: (draft) => store.models.addVersion({ ...draft, lineage: { ...draft.lineage, ...extra } }) },
        blobs: deps.blobs,
        clock: deps.clock,
        limits: deps.limits,
      });
      return registry.register({
        name,
        kind: source.kind,
        meta: {
          filename: source.filename,
          framework: parent?.framework ?? 'custom',
          description: `retrained by job ${lineage.job ?? '?'}, run ${lineage.run ?? '?'}`,
          runId: lineage.runId,
          dataset: lineage.datasets?.map((d) => `${d.name}:${d.version}`).join(',') || undefined,
        },
        source: source.open(),
        actor,
      });
    },
    addLineageMetrics: (model, metrics) => store.retraining.addLineageMetrics(model, metrics),
    prepare: (service, model, actor, signal) => deps.updates.prepare(service, model, actor, signal),
    evaluate: (call) =>
      evaluateImage({
        ref: call.ref,
        platform: hubPlatform(),
        rows: call.rows,
        pointer: call.pointer,
        metric: call.metric,
        containerName: call.containerName,
        hubInstance: deps.instance,
        timeoutMs: deps.evalTimeoutMs,
        memory: call.memory,
        cpus: call.cpus,
        log: call.log,
        signal: call.signal,
      }),
    rollOut: (service, imageId, rollout, actor) => deps.updates.rollOut(service, imageId, rollout, actor),
  };
}
