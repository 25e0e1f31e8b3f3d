/** /ui/builds (?status=S): the hub's image builds, newest first, live. */
import { useLocation } from 'preact-iso';
import type { ImageList, ImageStatus } from '../../../shared/api/images.js';
import { api, seg } from '../api.js';
import { everyMember } from '../every-member.js';
import { Ago } from '../components/ago.js';
import { BuildProgress } from '../components/build-progress.js';
import { ErrorMessage } from '../components/error-message.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { SmokeChecks } from '../components/smoke-checks.js';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import { LIST_POLL_MS } from './intervals.js';

/** The API's statuses (shared/api/images.ts IMAGE_STATUSES; a runtime import would bundle typebox). */
const STATUSES = everyMember<ImageStatus>()(['queued', 'building', 'testing', 'succeeded', 'failed', 'cancelled']);
const isStatus = (s: string | undefined): s is ImageStatus => STATUSES.includes(s as ImageStatus);

export default function BuildsPage() {
  const { query, route } = useLocation();
  const status = isStatus(query.status) ? query.status : undefined;
  const { data, error } = usePoll(() => api.get<ImageList>('/api/v1/images', { status }), LIST_POLL_MS, [status]);
  // The filter is in the URL, so a filtered list can be bookmarked.
  const choose = (value: string) => route(value ? `/ui/builds?status=${value}` : '/ui/builds', true);
  const images = data ? [...data.images].sort((a, b) => b.id - a.id) : [];

  return (
    <section>
      <PageHeader title="Builds" />
      <ErrorMessage error={error} what="The builds could not be loaded" />
      <div class="filters">
        <label class="inline" for="build-status">
          Status
          <select id="build-status" value={status ?? ''} onChange={(e) => choose((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        {data ? <span class="muted">{images.length === 1 ? '1 build' : `${images.length} builds`}</span> : null}
      </div>
      {!data ? (
        error ? null : <Loading what="Loading the builds" />
      ) : (
        <div class="table-wrap">
          <table>
            <caption>Image builds, newest first</caption>
            <thead>
              <tr>
                <th class="num">Build</th>
                <th>Manifest</th>
                <th>Status</th>
                <th>Platforms and smoke tests</th>
                <th>Progress</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {images.length === 0 ? (
                <tr>
                  <td colSpan={6} class="muted">
                    {status ? `No build is ${status}.` : 'No image has been built yet (edgeml image build).'}
                  </td>
                </tr>
              ) : (
                images.map((i) => (
                  <tr key={i.id}>
                    <td class="num">
                      <a href={`/ui/builds/${seg(i.id)}`}>{i.id}</a>
                    </td>
                    <td>
                      {i.manifest.name}:{i.manifest.version}
                    </td>
                    <td>
                      <StatusBadge status={i.status} />
                    </td>
                    <td>
                      <SmokeChecks image={i} />
                    </td>
                    <td>
                      <BuildProgress id={i.id} progress={i.progress} />
                    </td>
                    <td>
                      <Ago ts={i.createdAt} />
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
