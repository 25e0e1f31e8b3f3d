/**
 * /ui/models/:name (?version=V or ?version=@ALIAS): a model's versions, and for one of them (the latest unless the URL
 * names one) its facts and its lineage from data to the devices running it.
 */
import { useRoute } from 'preact-iso';
import type { ModelLineage } from '../../../shared/api/lineage.js';
import type { ModelSummary, ModelVersion } from '../../../shared/api/models.js';
// The CLI's wording of a size (`12.3 MB`), so a model or image reads as `edgeml model ls` prints it.
// A value import from shared/: size.ts brings errors.ts (no dependency), never typebox.
import { formatBytes } from '../../../shared/size.js';
import { api, seg } from '../api.js';
import { Ago } from '../components/ago.js';
import { Digest } from '../components/digest.js';
import { ErrorMessage } from '../components/error-message.js';
import { KeyValue } from '../components/key-value.js';
import { LineageChain, modelHref } from '../components/lineage-chain.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { Tags } from '../components/tags.js';
import { usePoll } from '../poll.js';
import { DETAIL_POLL_MS } from './intervals.js';

/** Where a version came from, in a few words, for the versions table. */
function lineageSummary(lineage: ModelVersion['lineage']): string {
  const parts: string[] = [];
  if (lineage.parent) parts.push(`from ${lineage.parent.name}:${lineage.parent.version}`);
  if (lineage.job) parts.push(`${lineage.job} run ${lineage.run ?? '?'}`);
  else if (lineage.runId) parts.push(`run ${lineage.runId}`);
  const datasets = lineage.datasets?.map((d) => `${d.name}:${d.version}`) ?? (lineage.dataset ? [lineage.dataset] : []);
  if (datasets.length > 0) parts.push(`data ${datasets.join(', ')}`);
  return parts.join(' · ');
}

function Versions({ summary, shown }: { summary: ModelSummary; shown: number | undefined }) {
  const versions = [...summary.versions].sort((a, b) => b.version - a.version);
  return (
    <div class="table-wrap">
      <table>
        <caption>Versions of {summary.name}</caption>
        <thead>
          <tr>
            <th class="num">Version</th>
            <th>Digest</th>
            <th class="num">Size</th>
            <th>Aliases</th>
            <th>Tags</th>
            <th>Created</th>
            <th>Lineage</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version} class={v.version === shown ? 'selected' : undefined}>
              <td class="num">
                <a href={modelHref(v.name, v.version)} aria-current={v.version === shown ? 'true' : undefined}>
                  {v.version}
                </a>
              </td>
              <td>
                <Digest value={v.digest} />
              </td>
              <td class="num">{formatBytes(v.size)}</td>
              <td>{v.aliases.length > 0 ? v.aliases.map((a) => `@${a}`).join(' ') : <span class="muted">—</span>}</td>
              <td>
                <Tags tags={v.tags} />
              </td>
              <td>
                <Ago ts={v.createdAt} />
              </td>
              <td>{lineageSummary(v.lineage) || <span class="muted">not recorded</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function VersionFacts({ version }: { version: ModelVersion }) {
  return (
    <KeyValue
      rows={[
        ['Framework', version.framework],
        ['Kind', `${version.kind}, ${version.files.length} ${version.files.length === 1 ? 'file' : 'files'}`],
        ['Size', formatBytes(version.size)],
        ['Digest', <Digest value={version.digest} />],
        ['Registered by', version.createdBy.keyName],
        ['Registered', <Ago ts={version.createdAt} />],
        ['Description', version.description || null],
      ]}
    />
  );
}

export default function ModelPage() {
  const { params, query } = useRoute();
  const name = params.name ?? '';
  // A version number or an alias (the lineage route resolves `@ALIAS`); anything else: the latest.
  const ref = query.version && /^([0-9]+|@[^\s/]+)$/.test(query.version) ? query.version : 'latest';
  const summary = usePoll(() => api.get<ModelSummary>(`/api/v1/models/${seg(name)}`), DETAIL_POLL_MS, [name]);
  const lineage = usePoll(() => api.get<ModelLineage>(`/api/v1/models/${seg(name)}/versions/${seg(ref)}/lineage`), DETAIL_POLL_MS, [name, ref]);
  const shown = lineage.data?.model.version;
  const version = summary.data?.versions.find((v) => v.version === shown);

  return (
    <section>
      <PageHeader title={`Model ${name}`}>
        {summary.data ? (
          <span class="muted">
            {summary.data.versions.length} {summary.data.versions.length === 1 ? 'version' : 'versions'} · latest {summary.data.latest}
          </span>
        ) : null}
      </PageHeader>
      <ErrorMessage error={summary.error} what="The model could not be loaded" />
      {summary.data ? <Versions summary={summary.data} shown={shown} /> : summary.error ? null : <Loading what="Loading the versions" />}

      <h2>
        {shown === undefined ? 'Version' : `Version ${shown}`}
        {ref === 'latest' && shown !== undefined ? <span class="muted"> (latest)</span> : null}
        {ref.startsWith('@') && shown !== undefined ? <span class="muted"> ({ref})</span> : null}
      </h2>
      <ErrorMessage error={lineage.error} what={`The lineage of ${name}${ref.startsWith('@') ? '' : ':'}${ref} could not be loaded`} />
      {version ? <VersionFacts version={version} /> : null}
      {lineage.data ? (
        <>
          <h2>Lineage, from data to devices</h2>
          <LineageChain lineage={lineage.data} />
        </>
      ) : lineage.error ? null : (
        <Loading what="Loading the lineage" />
      )}
    </section>
  );
}
