/**
 * One deployment: what it runs (revision, image, models), its limits, scale and capture settings, its
 * target, where clients score it, the devices serving it, its revisions and its rollouts. The service
 * key is never shown (the hub showed it once, at deploy); the gateway URL pattern says where it goes.
 */
import { useRoute } from 'preact-iso';
import type { Deployment } from '../../../shared/api/deployments.js';
import type { DeviceList } from '../../../shared/api/devices.js';
import type { RolloutList } from '../../../shared/api/rollouts.js';
import { api, seg } from '../api.js';
import { Ago } from '../components/ago.js';
import { bytesText, captureText, isActive, replicasText, servingDevices, servingText, ShortImage, Target } from '../components/deployment-facts.js';
import { ErrorMessage } from '../components/error-message.js';
import { KeyValue } from '../components/key-value.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import { LIST_POLL_MS } from './intervals.js';

async function load(service: string) {
  const [deployment, rollouts, devices] = await Promise.all([
    api.get<Deployment>(`/api/v1/deployments/${seg(service)}`),
    api.get<RolloutList>('/api/v1/rollouts', { service }),
    api.get<DeviceList>('/api/v1/devices'),
  ]);
  return { deployment, rollouts: rollouts.rollouts, devices: devices.devices };
}

type Loaded = Awaited<ReturnType<typeof load>>;

const modelLinks = (models: Deployment['models']) =>
  models.length === 0 ? null : (
    <>
      {models.map((m, i) => (
        <span key={`${m.name}:${m.version}`}>
          {i > 0 ? ', ' : ''}
          <a href={`/ui/models/${seg(m.name)}?version=${m.version}`}>
            {m.name}:{m.version}
          </a>
        </span>
      ))}
    </>
  );

function Summary({ d }: { d: Deployment }) {
  return (
    <KeyValue
      rows={[
        ['Revision', d.revision],
        ['Stable revision', d.stableRevision ?? <span class="muted">none yet</span>],
        ['Image', <ShortImage image={d.image} />],
        ['Build', d.build === null ? null : <a href={`/ui/builds/${seg(d.build)}`}>{d.build}</a>],
        ['Models', modelLinks(d.models)],
        ['Target', <Target target={d.target} />],
        ['Created', <Ago ts={d.createdAt} />],
        ['Updated', <Ago ts={d.updatedAt} />],
      ]}
    />
  );
}

function Settings({ d }: { d: Deployment }) {
  return (
    <div class="grid-2">
      <section aria-labelledby="limits">
        <h2 id="limits">Limits and replicas</h2>
        <KeyValue
          rows={[
            ['Max concurrent', `${d.limits.maxConcurrent} per replica`],
            ['Max queue', `${d.limits.maxQueue} per ready replica`],
            ['Memory', bytesText(d.limits.memoryBytes)],
            ['CPUs', d.limits.cpus ?? 'no limit'],
            ['Replicas', replicasText(d)],
            ['Target utilization', d.scale.targetUtilization],
            ['Scale windows', `up ${d.scale.scaleUpWindow}, down ${d.scale.scaleDownWindow}`],
          ]}
        />
      </section>
      <section aria-labelledby="capture">
        <h2 id="capture">Capture</h2>
        <KeyValue
          rows={[
            ['Rate', captureText(d)],
            ['Max body', bytesText(d.capture.maxBodyBytes)],
            ['Redacted fields', d.capture.redact.length ? <code>{d.capture.redact.join(', ')}</code> : 'none'],
          ]}
        />
        <h2 id="gateway">Scoring</h2>
        <p>
          Clients score on every serving device at <code>GATEWAY/v1/services/{d.service}/score</code> (POST), with{' '}
          <code>Authorization: Bearer SERVICE_KEY</code>: the service key was shown once, at deploy (<code>edgeml service rotate-key {d.service}</code> makes a new one).
        </p>
      </section>
    </div>
  );
}

function Serving({ data }: { data: Loaded }) {
  const serving = servingDevices(data.devices, data.deployment.service);
  if (serving.length === 0) return <p class="muted">No device reports serving it.</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption>Devices serving ({servingText(serving)})</caption>
        <thead>
          <tr>
            <th>Device</th>
            <th>Status</th>
            <th class="num">Revision</th>
            <th>Scoring URL</th>
          </tr>
        </thead>
        <tbody>
          {serving.map(({ device, revision }) => (
            <tr key={device.id}>
              <td>
                <a href={`/ui/devices/${seg(device.id)}`}>{device.id}</a>
              </td>
              <td>
                <StatusBadge status={device.status} />
              </td>
              <td class="num">{revision}</td>
              <td>{device.gateway ? <code>{`${device.gateway}/v1/services/${data.deployment.service}/score`}</code> : <span class="muted">not reported</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Revisions({ d }: { d: Deployment }) {
  return (
    <div class="table-wrap">
      <table>
        <caption>Revisions, newest first</caption>
        <thead>
          <tr>
            <th class="num">Revision</th>
            <th>Image</th>
            <th>Build</th>
            <th>Models</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {[...d.revisions].reverse().map((r) => (
            <tr key={r.revision}>
              <td class="num">
                {r.revision}
                {r.revision === d.stableRevision ? (
                  <>
                    {' '}
                    <span class="badge good">stable</span>
                  </>
                ) : null}
              </td>
              <td>
                <ShortImage image={r.image} />
              </td>
              <td>{r.build === null ? <span class="muted">—</span> : <a href={`/ui/builds/${seg(r.build)}`}>{r.build}</a>}</td>
              <td>{modelLinks(r.models) ?? <span class="muted">—</span>}</td>
              <td>
                <Ago ts={r.createdAt} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Rollouts({ rollouts }: { rollouts: Loaded['rollouts'] }) {
  return (
    <div class="table-wrap">
      <table>
        <caption>Rollouts, newest first</caption>
        <thead>
          <tr>
            <th>Rollout</th>
            <th>Kind</th>
            <th>Revision</th>
            <th>Strategy</th>
            <th>Phase</th>
            <th class="num">Done</th>
            <th>Started</th>
            <th>Finished</th>
          </tr>
        </thead>
        <tbody>
          {rollouts.map((r) => (
            <tr key={r.id}>
              <td>
                <a href={`/ui/rollouts/${r.id}`}>Rollout {r.id}</a>
              </td>
              <td>{r.kind}</td>
              <td>
                {r.fromRevision ?? '—'} → {r.revision ?? 'none'}
              </td>
              <td>{r.strategy}</td>
              <td>
                <StatusBadge status={r.phase} />
              </td>
              <td class="num">{Math.round(r.progress * 100)}%</td>
              <td>
                <Ago ts={r.createdAt} />
              </td>
              <td>{r.finishedAt ? <Ago ts={r.finishedAt} /> : isActive(r.phase) ? <span class="muted">in progress</span> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export default function DeploymentPage() {
  const { params } = useRoute();
  const service = params.service ?? '';
  const { data, error } = usePoll(() => load(service), LIST_POLL_MS, [service]);
  const d = data?.deployment;
  return (
    <section>
      <PageHeader title={`Deployment ${service}`}>
        {d && isActive(d.rollout.phase) ? (
          <a href={`/ui/rollouts/${d.rollout.id}`}>
            Rollout {d.rollout.id} is {d.rollout.phase}
          </a>
        ) : null}
      </PageHeader>
      <ErrorMessage error={error} what={`Deployment ${service} could not be loaded`} />
      {!data || !d ? (
        error ? null : <Loading what="Loading the deployment" />
      ) : (
        <>
          {d.deletedAt ? (
            <p class="notice">
              Deleted <Ago ts={d.deletedAt} /> by {d.deletedBy?.keyName ?? 'someone'}: its history is kept.
            </p>
          ) : null}
          <Summary d={d} />
          <Settings d={d} />
          <h2>Devices</h2>
          <Serving data={data} />
          <h2>History</h2>
          <Revisions d={d} />
          <Rollouts rollouts={data.rollouts} />
        </>
      )}
    </section>
  );
}
