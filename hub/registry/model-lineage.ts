/**
 * A model version's lineage as one chain: what it was trained from and on (its stored lineage),
 * the manifest versions that pin it, the image builds of those, and the devices serving it (the
 * locator, so the chain ends exactly where `model where` does).
 *
 * The store does not index manifests by model: one list of every manifest version is read and
 * filtered (small next to a fleet's devices; an index is for when it is not). Images are asked for
 * by the names of the manifests that pin the version only, none when no manifest does.
 */
import type { LineageImage, ManifestRef, ModelLineage, ModelTraining } from '../../shared/api/lineage.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { ModelVersion } from '../../shared/api/models.js';
import type { ModelWhere } from '../../shared/api/where.js';
import type { ImageRecord, ImageRepository, ManifestRepository, ModelRepository, VersionSelector } from '../store/store.js';

export interface ModelLineagePorts {
  models: Pick<ModelRepository, 'resolve'>;
  manifests: Pick<ManifestRepository, 'list'>;
  images: Pick<ImageRepository, 'list'>;
  locator: { where(name: string, version: number): Promise<Pick<ModelWhere, 'placements' | 'unresolved'>> };
}

/** The training side of the stored lineage; null when it says nothing at all. */
export function trainingOf(lineage: ModelVersion['lineage']): ModelTraining | null {
  const training: ModelTraining = {
    runId: lineage.runId,
    dataset: lineage.dataset,
    job: lineage.job ?? null,
    run: lineage.run ?? null,
    trainer: lineage.trainer ?? null,
    labels: lineage.labels ?? null,
    metrics: lineage.metrics,
  };
  const { metrics, ...rest } = training;
  return Object.values(rest).every((v) => v === null) && Object.keys(metrics).length === 0 ? null : training;
}

const manifestKey = (m: ManifestRef) => `${m.name}:${m.version}`;

/** The manifest versions that pin `version`, by name then version. */
export function manifestsIncluding(version: Pick<ModelVersion, 'name' | 'version'>, manifests: readonly Pick<ManifestVersion, 'name' | 'version' | 'models'>[]): ManifestRef[] {
  return manifests
    .filter((m) => m.models.some((x) => x.name === version.name && x.version === version.version))
    .map((m) => ({ name: m.name, version: m.version }))
    .sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
}

/** The chain of one version, from what the store and the locator said. */
export function assembleLineage(
  version: ModelVersion,
  including: readonly ManifestRef[],
  /** Any order; builds of other manifest versions are left out. */
  images: readonly Pick<ImageRecord, 'id' | 'manifest' | 'status' | 'platforms' | 'digest'>[],
  where: Pick<ModelWhere, 'placements' | 'unresolved'>,
): ModelLineage {
  const wanted = new Set(including.map(manifestKey));
  const builds: LineageImage[] = images
    .filter((i) => wanted.has(manifestKey(i.manifest)))
    // Build numbers are assigned in order: oldest first.
    .sort((a, b) => a.id - b.id)
    .map((i) => ({ id: i.id, manifest: { name: i.manifest.name, version: i.manifest.version }, status: i.status, platforms: i.platforms, digest: i.digest }));
  const { name, digest, aliases, tags, createdAt, lineage } = version;
  return {
    model: { name, version: version.version, digest, aliases, tags, createdAt },
    parent: lineage.parent ?? null,
    datasets: lineage.datasets ?? [],
    training: trainingOf(lineage),
    manifests: [...including],
    images: builds,
    placements: where.placements,
    unresolved: where.unresolved,
  };
}

export class ModelLineages {
  constructor(private readonly ports: ModelLineagePorts) {}

  /** Throws HUB_E_MODEL_NOT_FOUND (404) for a model, version or alias the registry does not have. */
  async of(name: string, selector: VersionSelector): Promise<ModelLineage> {
    const version = await this.ports.models.resolve(name, selector);
    const [including, where] = await Promise.all([
      this.ports.manifests.list({}).then((all) => manifestsIncluding(version, all)),
      this.ports.locator.where(version.name, version.version),
    ]);
    const names = [...new Set(including.map((m) => m.name))];
    const images = (await Promise.all(names.map((manifest) => this.ports.images.list({ manifest })))).flat();
    return assembleLineage(version, including, images, where);
  }
}
