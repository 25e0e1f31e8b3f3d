/**
 * /ui/builds/:id: one image build: its facts, each platform's image and smoke test, its progress
 * and its log, followed live while it builds. Cancel needs the deploy scope.
 */
import { useRoute } from 'preact-iso';
import type { Image, ImageStatus } from '../../../shared/api/images.js';
// The CLI's wording of a size (`12.3 MB`), so a model or image reads as `edgeml model ls` prints it.
// A value import from shared/: size.ts brings errors.ts (no dependency), never typebox.
import { formatBytes } from '../../../shared/size.js';
import { api, seg } from '../api.js';
import { Ago } from '../components/ago.js';
import { BuildProgress } from '../components/build-progress.js';
import { Digest } from '../components/digest.js';
import { ErrorMessage } from '../components/error-message.js';
import { KeyValue } from '../components/key-value.js';
import { modelHref } from '../components/lineage-chain.js';
import { ConfirmAction } from '../components/confirm-action.js';
import { LiveLog } from '../components/live-log.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import { useSession } from '../session.js';
import { DETAIL_POLL_MS } from './intervals.js';
import './builds.css';

/** shared/api/images.ts FINISHED_STATUSES (a runtime import would bundle typebox). */
const FINISHED: ImageStatus[] = ['succeeded', 'failed', 'cancelled'];

function Facts({ image }: { image: Image }) {
  return (
    <KeyValue
      rows={[
        ['Status', <StatusBadge status={image.status} />],
        ['Manifest', `${image.manifest.name}:${image.manifest.version}`],
        ['Runtime', image.runtime],
        [
          'Models',
          image.models.length === 0
            ? null
            : image.models.map((m, i) => (
                <span key={`${m.name}:${m.version}`}>
                  {i > 0 ? ', ' : null}
                  <a href={modelHref(m.name, m.version)}>
                    {m.name}:{m.version}
                  </a>
                </span>
              )),
        ],
        ['Repository', <code>{image.repository}</code>],
        ['Tags', image.tags.join(', ') || null],
        ['Digest', <Digest value={image.digest} />],
        ['Base image', <code>{image.baseImage}</code>],
        ['Created by', image.createdBy.keyName],
        ['Created', <Ago ts={image.createdAt} />],
        ['Started', <Ago ts={image.startedAt} />],
        ['Finished', image.finishedAt ? <Ago ts={image.finishedAt} /> : null],
        ['Duration', image.durationMs === null ? null : `${(image.durationMs / 1000).toFixed(1)} s`],
        ['Attempts', String(image.attempts)],
      ]}
    />
  );
}

function Platforms({ image }: { image: Image }) {
  return (
    <div class="table-wrap">
      <table>
        <caption>Platforms and smoke tests</caption>
        <thead>
          <tr>
            <th>Platform</th>
            <th>Image digest</th>
            <th class="num">Size</th>
            <th>Smoke test</th>
            <th>Result</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(image.platforms).map(([platform, digest]) => {
            const check = image.checks[platform];
            const size = image.sizes[platform];
            return (
              <tr key={platform}>
                <td>{platform}</td>
                <td>
                  <Digest value={digest} />
                </td>
                <td class="num">{size === undefined ? <span class="muted">—</span> : formatBytes(size)}</td>
                <td>{check ? <StatusBadge status={check.status} /> : <span class="muted">not tested yet</span>}</td>
                <td class="check-result">
                  {check ? (
                    <>
                      {check.message}
                      {check.output ? (
                        <details class="check-output">
                          <summary>Output of the {platform} smoke test</summary>
                          <pre class="log">{check.output}</pre>
                        </details>
                      ) : null}
                    </>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function CancelButton({ id, onDone }: { id: number; onDone: () => void }) {
  return (
    <ConfirmAction
      label="Cancel build"
      question={`Cancel build ${id}? Its platforms stop where they are and nothing is pushed.`}
      confirm="Cancel the build"
      failure="The build could not be cancelled"
      act={async () => {
        await api.post<Image>(`/api/v1/images/${seg(id)}/cancel`);
        onDone();
      }}
    />
  );
}

export default function BuildPage() {
  const { params } = useRoute();
  const id = Number(params.id);
  const session = useSession();
  const { data: image, error, reload } = usePoll(() => api.get<Image>(`/api/v1/images/${seg(id)}`), DETAIL_POLL_MS, [id]);
  const done = image ? FINISHED.includes(image.status) : false;

  return (
    <section>
      <PageHeader title={`Build ${params.id}`}>
        {image && !done && session.can('deploy') ? <CancelButton id={id} onDone={reload} /> : null}
      </PageHeader>
      <ErrorMessage error={error} what={`Build ${params.id} could not be loaded`} />
      {!image ? (
        error ? null : <Loading what="Loading the build" />
      ) : (
        <>
          {image.error ? (
            <p class="error">
              {image.status === 'cancelled' ? 'Cancelled' : 'Failed'}: {image.error.message} ({image.error.code})
            </p>
          ) : null}
          <Facts image={image} />
          {image.progress ? (
            <>
              <h2>Progress</h2>
              <BuildProgress id={image.id} progress={image.progress} />
            </>
          ) : null}
          <h2>Platforms</h2>
          <Platforms image={image} />
        </>
      )}
      <h2>Log</h2>
      {image ? <LiveLog path={`/api/v1/images/${seg(id)}/log`} label={`Log of build ${id}`} active={!done} /> : null}
    </section>
  );
}
