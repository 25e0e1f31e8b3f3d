/**
 * Deployments: every live service with its revision, image, target, limits, capture and its latest
 * rollout, and how many devices serve it now (from what devices last reported).
 */
import type { DeploymentList } from '../../../shared/api/deployments.js';
import type { DeviceList } from '../../../shared/api/devices.js';
import { api, seg } from '../api.js';
import { captureText, limitsText, replicasText, servingDevices, servingText, ShortImage, Target } from '../components/deployment-facts.js';
import { ErrorMessage } from '../components/error-message.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import { LIST_POLL_MS } from './intervals.js';

async function load() {
  const [deployments, devices] = await Promise.all([api.get<DeploymentList>('/api/v1/deployments'), api.get<DeviceList>('/api/v1/devices')]);
  return { deployments: deployments.deployments, devices: devices.devices };
}

export default function DeploymentsPage() {
  const { data, error } = usePoll(load, LIST_POLL_MS, []);
  return (
    <section>
      <PageHeader title="Deployments" />
      <ErrorMessage error={error} what="Deployments could not be loaded" />
      {!data ? (
        error ? null : <Loading what="Loading deployments" />
      ) : data.deployments.length === 0 ? (
        <p class="muted">
          No service is deployed yet: <code>edgeml deploy NAME --image REPO@sha256:… --target KEY=VALUE</code>.
        </p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption>Services ({data.deployments.length})</caption>
            <thead>
              <tr>
                <th>Service</th>
                <th class="num">Revision</th>
                <th>Image</th>
                <th>Target</th>
                <th>Replicas</th>
                <th>Limits</th>
                <th>Capture</th>
                <th>Latest rollout</th>
                <th class="num">Devices serving</th>
              </tr>
            </thead>
            <tbody>
              {data.deployments.map((d) => {
                const serving = servingDevices(data.devices, d.service);
                const onCurrent = serving.filter((s) => s.revision === d.revision).length;
                return (
                  <tr key={d.service}>
                    <td>
                      <a href={`/ui/deployments/${seg(d.service)}`}>{d.service}</a>
                    </td>
                    <td class="num">{d.revision}</td>
                    <td>
                      <ShortImage image={d.image} />
                    </td>
                    <td>
                      <Target target={d.target} />
                    </td>
                    <td>{replicasText(d)}</td>
                    <td>{limitsText(d)}</td>
                    <td>{captureText(d)}</td>
                    <td>
                      <a href={`/ui/rollouts/${d.rollout.id}`}>
                        Rollout {d.rollout.id}
                      </a>{' '}
                      <StatusBadge status={d.rollout.phase} />
                    </td>
                    <td class="num" title={`${onCurrent} on revision ${d.revision}`}>
                      {servingText(serving)}
                      {onCurrent !== serving.length ? <span class="muted"> ({onCurrent} on r{d.revision})</span> : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
