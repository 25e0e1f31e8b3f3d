/**
 * The hub's trainer part: the registry and the image builder of trainers (its logs in
 * DATA/training/logs). Started after the image builder, whose start kills the processes a crash
 * left (both builders' processes carry the same marker). Training containers a crash left are the
 * retraining part's to remove: it owns the training runs (hub/retraining/start-retraining.ts).
 */
import { join } from 'node:path';
import type { Runtime } from '../../shared/api/manifests.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { BuildLogs } from '../builds/build-log.js';
import { buildxBuild } from '../builds/buildx.js';
import { checkBuildTools } from '../builds/docker-cli.js';
import type { BlobStore } from '../store/blob-store.js';
import type { HubStore } from '../store/store.js';
import { TrainerBuilder, type TrainerBuildSteps } from './trainer-builder.js';
import { hubPlatform, writeTrainerContext } from './trainer-image.js';
import { TrainerRegistry } from './trainer-registry.js';

const dockerTrainerSteps: TrainerBuildSteps = { checkTools: checkBuildTools, writeContext: writeTrainerContext, buildx: buildxBuild };

export interface TrainerPartOptions {
  dataDir: string;
  registry: string;
  imagePrefix: string;
  baseImages: Record<Runtime, string>;
  extraCaFile?: string | undefined;
}

export interface TrainerPart {
  registry: TrainerRegistry;
  logs: BuildLogs;
  stop(): Promise<void>;
}

export async function startTrainers(store: HubStore, blobs: BlobStore, clock: Clock, logger: Logger, options: TrainerPartOptions): Promise<TrainerPart> {
  const logs = await BuildLogs.open(join(options.dataDir, 'training', 'logs'), logger);
  const builder = new TrainerBuilder({
    trainers: store.trainers,
    blobs,
    logs,
    clock,
    logger,
    steps: dockerTrainerSteps,
    options: {
      registry: options.registry,
      imagePrefix: options.imagePrefix,
      baseImages: options.baseImages,
      extraCaFile: options.extraCaFile,
      platform: hubPlatform(),
      workDir: join(options.dataDir, 'training', 'work'),
    },
  });
  await builder.start();
  return { registry: new TrainerRegistry({ trainers: store.trainers, blobs, builder, clock }), logs, stop: () => builder.stop() };
}
