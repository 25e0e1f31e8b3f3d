/**
 * The hub's retraining part: run logs in DATA/retraining/logs, work directories in
 * DATA/retraining/work, the ports bound to the hub's modules, node-cron schedules. Started once
 * the model updates are, since a run ends with one.
 */
import { join } from 'node:path';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { BuildLogs } from '../builds/build-log.js';
import type { LabelledData } from '../datasets/labelled-data.js';
import { parseVersionRef } from '../registry/model-ref.js';
import type { BlobStore } from '../store/blob-store.js';
import type { HubStore } from '../store/store.js';
import type { TrainerRegistry } from '../training/trainer-registry.js';
import { removeTrainingLeftovers } from '../training/training-runner.js';
import { hubRunPorts, type ModelUpdater } from './ports.js';
import { Retraining } from './retraining.js';
import type { RunPorts } from './run-pipeline.js';
import { cronScheduler } from './scheduler.js';

/** One evaluation of one image: its start and every eval row. */
const EVAL_TIMEOUT_MS = 10 * 60_000;

export interface RetrainingPartOptions {
  store: HubStore;
  blobs: BlobStore;
  clock: Clock;
  labelled: LabelledData;
  datasets: RunPorts['datasets'];
  trainers: TrainerRegistry;
  updates: ModelUpdater;
  dataDir: string;
  instance: string;
  limits: { maxUploadBytes: number; maxArchiveFiles: number };
  logger: Logger;
}

export async function startRetraining(opts: RetrainingPartOptions): Promise<Retraining> {
  const { store, instance } = opts;
  const retraining = new Retraining({
    repo: store.retraining,
    ports: hubRunPorts({ ...opts, evalTimeoutMs: EVAL_TIMEOUT_MS }),
    check: {
      service: async (name) => (await store.deployments.get(name)) !== undefined,
      trainer: (ref) => {
        const { name, selector } = parseVersionRef(ref);
        return opts.trainers.resolve(name, selector);
      },
      dataset: (name, version) => opts.datasets.resolve(name, version),
    },
    countLabels: (service, since) => opts.labelled.countLabels(service, since),
    removeLeftovers: () => removeTrainingLeftovers(instance),
    logs: await BuildLogs.open(join(opts.dataDir, 'retraining', 'logs'), opts.logger),
    scheduler: cronScheduler,
    clock: opts.clock,
    workDir: join(opts.dataDir, 'retraining', 'work'),
    instance,
    logger: opts.logger,
  });
  await retraining.start();
  return retraining;
}
