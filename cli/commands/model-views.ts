/**
 * Human renderings of the model registry's answers (`--json` prints the answers themselves).
 */
import type { ModelSummary, ModelVersion } from '../../shared/api/models.js';
import { formatBytes } from '../../shared/size.js';
import { formatList, formatPairs, formatTime, renderFields, renderTable, shortDigest } from '../output.js';

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
