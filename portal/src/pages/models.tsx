/**
 * /ui/models (?q=TEXT): every registered model with its latest version, aliases, tags and how many
 * versions it has. The name filter is in the URL, as on Fleet, so a filtered list can be shared.
 */
import { useLocation } from 'preact-iso';
import type { ModelVersion, ModelVersionList } from '../../../shared/api/models.js';
import { api, seg } from '../api.js';
import { Ago } from '../components/ago.js';
import { ErrorMessage } from '../components/error-message.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { usePoll } from '../poll.js';
import { LIST_POLL_MS } from './intervals.js';
import { Tags } from '../components/tags.js';

interface ModelRow {
  name: string;
  latest: ModelVersion;
  count: number;
  aliases: { alias: string; version: number }[];
}

/** The flat version list grouped by model, names in order. */
function modelsOf(versions: ModelVersion[]): ModelRow[] {
  const byName = new Map<string, ModelVersion[]>();
  for (const v of versions) byName.set(v.name, [...(byName.get(v.name) ?? []), v]);
  return [...byName.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, vs]) => ({
      name,
      latest: vs.reduce((a, b) => (b.version > a.version ? b : a)),
      count: vs.length,
      aliases: vs.flatMap((v) => v.aliases.map((alias) => ({ alias, version: v.version }))).sort((a, b) => a.alias.localeCompare(b.alias)),
    }));
}

export default function ModelsPage() {
  const { query, route } = useLocation();
  const filter = query.q ?? '';
  // Replacing the URL: typing is not a trail of pages for Back to walk through.
  const setFilter = (q: string) => route(q ? `/ui/models?q=${encodeURIComponent(q)}` : '/ui/models', true);
  const { data, error } = usePoll(() => api.get<ModelVersionList>('/api/v1/models'), LIST_POLL_MS, []);
  const models = data ? modelsOf(data.versions) : [];
  const needle = filter.trim().toLowerCase();
  const shown = models.filter((m) => m.name.toLowerCase().includes(needle));

  return (
    <section>
      <PageHeader title="Models" />
      <ErrorMessage error={error} what="The models could not be loaded" />
      <div class="filters">
        <label class="inline" for="model-filter">
          Name contains
          <input id="model-filter" type="search" value={filter} onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)} />
        </label>
        {data ? (
          <span class="muted">
            {shown.length} of {models.length} {models.length === 1 ? 'model' : 'models'}
          </span>
        ) : null}
      </div>
      {!data ? (
        error ? null : <Loading what="Loading the models" />
      ) : (
        <div class="table-wrap">
          <table>
            <caption>Registered models</caption>
            <thead>
              <tr>
                <th>Name</th>
                <th class="num">Latest</th>
                <th>Aliases</th>
                <th>Tags (latest)</th>
                <th class="num">Versions</th>
                <th>Last registered</th>
              </tr>
            </thead>
            <tbody>
              {shown.length === 0 ? (
                <tr>
                  <td colSpan={6} class="muted">
                    {models.length === 0 ? 'No model is registered yet (edgeml model register).' : 'No model name matches.'}
                  </td>
                </tr>
              ) : (
                shown.map((m) => (
                  <tr key={m.name}>
                    <td>
                      <a href={`/ui/models/${seg(m.name)}`}>{m.name}</a>
                    </td>
                    <td class="num">{m.latest.version}</td>
                    <td>{m.aliases.length > 0 ? m.aliases.map((a) => `@${a.alias} → ${a.version}`).join(', ') : <span class="muted">—</span>}</td>
                    <td>
                      <Tags tags={m.latest.tags} />
                    </td>
                    <td class="num">{m.count}</td>
                    <td>
                      <Ago ts={m.latest.createdAt} />
                    </td>
                  </tr>
                ))
              )}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
