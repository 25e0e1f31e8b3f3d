/**
 * Human renderings of the model registry's answers (`--json` prints the answers themselves).
 */
import type { ModelLineage } from '../../shared/api/lineage.js';
import type { ModelSummary, ModelVersion } from '../../shared/api/models.js';
import type { UnresolvedService } from '../../shared/api/where.js';
import { formatBytes } from '../../shared/size.js';
import { formatList, formatPairs, formatTime, renderFields, renderTable, shortDigest } from '../output.js';
import { servicePhase } from './where-views.js';

const row = (v: ModelVersion, withName: boolean): string[] => [
  ...(withName ? [v.name] : []),
  String(v.version),
  shortDigest(v.digest),
  formatBytes(v.size),
  v.framework,
  formatList(v.aliases),
  formatPairs(v.tags),
  formatTime(v.createdAt),
];

export function renderVersionList(versions: readonly ModelVersion[]): string {
  return renderTable(
    ['NAME', 'VERSION', 'DIGEST', 'SIZE', 'FRAMEWORK', 'ALIASES', 'TAGS', 'CREATED'],
    versions.map((v) => row(v, true)),
    '(no model versions)',
  );
}

export function renderModelSummary(summary: ModelSummary): string {
  const aliases = Object.entries(summary.aliases)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([alias, version]) => `${alias} → ${version}`);
  const head = renderFields([
    ['model', summary.name],
    ['latest', String(summary.latest)],
    ['aliases', formatList(aliases)],
  ]);
  const table = renderTable(
    ['VERSION', 'DIGEST', 'SIZE', 'FRAMEWORK', 'ALIASES', 'TAGS', 'CREATED'],
    summary.versions.map((v) => row(v, false)),
  );
  return `${head}\n${table}`;
}

export function renderModelVersion(v: ModelVersion): string {
  const { runId, dataset, metrics } = v.lineage;
  const fields = renderFields([
    ['model', `${v.name}:${v.version}`],
    ['kind', v.kind],
    ['digest', v.digest],
    ['size', `${formatBytes(v.size)} (${v.size} bytes)`],
    ['framework', v.framework],
    ['description', v.description || undefined],
    ['aliases', formatList(v.aliases)],
    ['tags', formatPairs(v.tags)],
    ['created', `${v.createdAt} by ${v.createdBy.keyName} (key ${v.createdBy.keyId})`],
    ['run', runId ?? undefined],
    ['dataset', dataset ?? undefined],
    ['metrics', Object.keys(metrics).length ? formatPairs(metrics) : undefined],
  ]);
  const files = renderTable(
    ['PATH', 'SIZE', 'DIGEST'],
    v.files.map((f) => [f.path, formatBytes(f.size), shortDigest(f.digest)]),
  );
  return `${fields}\nfiles:\n${files}`;
}

export function renderRegistered(v: ModelVersion): string {
  return `registered ${v.name}:${v.version}  ${v.digest}  ${formatBytes(v.size)}`;
}

const joinParts = (parts: readonly (string | false | null | undefined)[]) => parts.filter(Boolean).join('  ');

function trainingText(t: NonNullable<ModelLineage['training']>, withDataset: boolean): string {
  return joinParts([
    t.runId !== null && `run ${t.runId}`,
    t.job !== null && `job ${t.job}${t.run === null ? '' : ` #${t.run}`}`,
    t.trainer && `trainer ${t.trainer.name}:${t.trainer.version}`,
    t.labels && `${t.labels.count} labels until ${formatTime(t.labels.until)}`,
    withDataset && t.dataset !== null && `dataset ${t.dataset}`,
    Object.keys(t.metrics).length > 0 && formatPairs(t.metrics),
  ]);
}

function placementText(p: UnresolvedService): string {
  return `device ${p.device} (${p.deviceStatus})  service ${p.service}  serving revision ${p.servingRevision}  ${servicePhase(p)}`;
}

/**
 * The chain upstream of the version, then downstream: manifests, their builds, the devices each build
 * serves, and the services whose serving image the hub cannot attribute.
 */
export function renderModelLineage(l: ModelLineage): string {
  const { model, training } = l;
  const lines = [
    ...l.datasets.map((d) => `dataset   ${d.name}:${d.version}  ${shortDigest(d.digest)}`),
    // A registered dataset reference is shown as such when no registered dataset stands for it.
    ...(training ? [`training  ${trainingText(training, l.datasets.length === 0)}`] : []),
    `model     ${joinParts([
      `${model.name}:${model.version}`,
      shortDigest(model.digest),
      model.aliases.length > 0 && `aliases ${formatList(model.aliases)}`,
      Object.keys(model.tags).length > 0 && `tags ${formatPairs(model.tags)}`,
      l.parent && `from ${l.parent.name}:${l.parent.version}`,
      `created ${formatTime(model.createdAt)}`,
    ])}`,
  ];
  const shown = new Set<number>();
  for (const m of l.manifests) {
    lines.push(`  manifest ${m.name}:${m.version}`);
    for (const image of l.images.filter((i) => i.manifest.name === m.name && i.manifest.version === m.version)) {
      shown.add(image.id);
      lines.push(`    image ${joinParts([String(image.id), image.status, image.digest && shortDigest(image.digest), formatList(Object.keys(image.platforms))])}`);
      lines.push(...l.placements.filter((p) => p.build === image.id).map((p) => `      ${placementText(p)}`));
    }
  }
  if (l.manifests.length === 0) lines.push('  (in no manifest)');
  // Only a build record made outside a manifest could serve the version without being listed above.
  lines.push(...l.placements.filter((p) => !shown.has(p.build)).map((p) => `  image ${p.build}: ${placementText(p)}`));
  lines.push(...l.unresolved.map((u) => `may run it (the hub cannot tell): ${placementText(u)}`));
  if (l.placements.length === 0 && l.unresolved.length === 0) lines.push(`(no device runs ${model.name}:${model.version})`);
  return `${lines.join('\n')}\n`;
}
