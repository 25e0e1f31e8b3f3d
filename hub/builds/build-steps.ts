/**
 * The real side effects of a build: the docker CLI and buildx, the build context on disk, image
 * sizes from the registry, smoke-test containers, and the leftovers of a crashed run.
 */
import { writeBuildContext } from './build-context.js';
import { buildxBuild } from './buildx.js';
import { checkBuildTools, dockerOrFail, quick } from './docker-cli.js';
import type { BuildSteps } from './image-builder.js';
import { killLeftoverProcesses, removeContainersLabelled, SMOKE_TEST_LABEL } from './leftovers.js';
import { smokeTest } from './smoke-test.js';

interface ImageManifest {
  config?: { size?: number };
  layers?: Array<{ size?: number }>;
}

/**
 * What a device pulls for one platform: the config and every (compressed) layer. Read through
 * docker, so a registry that needs a login is read with the same credentials that pushed.
 */
async function imageSize(ref: string, signal: AbortSignal): Promise<number> {
  const lines = await dockerOrFail(['buildx', 'imagetools', 'inspect', '--raw', ref], `inspecting ${ref}`, () => undefined, quick(signal));
  const manifest = JSON.parse(lines.join('\n')) as ImageManifest;
  return (manifest.config?.size ?? 0) + (manifest.layers ?? []).reduce((sum, l) => sum + (l.size ?? 0), 0);
}

export const dockerBuildSteps: BuildSteps = {
  checkTools: checkBuildTools,
  writeContext: writeBuildContext,
  buildx: buildxBuild,
  sizes: async (repository, platforms, signal) => {
    const out: Record<string, number> = {};
    for (const [platform, digest] of Object.entries(platforms)) out[platform] = await imageSize(`${repository}@${digest}`, signal);
    return out;
  },
  smokeTest,
  removeLeftovers: async (instance) => ({ processes: await killLeftoverProcesses(instance), containers: await removeContainersLabelled(SMOKE_TEST_LABEL, instance) }),
};
