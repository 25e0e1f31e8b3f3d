/**
 * The real side effects of a build: the docker CLI and buildx, the build context on disk, the
 * registry's HTTP API for image sizes, and smoke-test containers.
 */
import { writeBuildContext } from './build-context.js';
import { buildxBuild } from './buildx.js';
import { buildFailed, checkBuildTools } from './docker-cli.js';
import type { BuildSteps } from './image-builder.js';
import { smokeTest } from './smoke-test.js';

const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

interface ImageManifest {
  config?: { size?: number };
  layers?: Array<{ size?: number }>;
}

/** What a device pulls for one platform: the config and every (compressed) layer. */
async function imageSize(registry: string, repository: string, digest: string, signal: AbortSignal): Promise<number> {
  const path = repository.slice(registry.length + 1);
  const res = await fetch(`http://${registry}/v2/${path}/manifests/${digest}`, { headers: { accept: MANIFEST_TYPES }, signal });
  if (res.status !== 200) throw buildFailed(`the registry answered ${res.status} for ${repository}@${digest}`);
  const manifest = (await res.json()) as ImageManifest;
  return (manifest.config?.size ?? 0) + (manifest.layers ?? []).reduce((sum, l) => sum + (l.size ?? 0), 0);
}

export function dockerBuildSteps(registry: string): BuildSteps {
  return {
    checkTools: checkBuildTools,
    writeContext: writeBuildContext,
    buildx: buildxBuild,
    sizes: async (repository, platforms, signal) => {
      const out: Record<string, number> = {};
      for (const [platform, digest] of Object.entries(platforms)) out[platform] = await imageSize(registry, repository, digest, signal);
      return out;
    },
    smokeTest,
  };
}
