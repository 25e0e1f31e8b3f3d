/**
 * "Which model runs where" as a picture: a model version's lineage drawn left to right, dataset →
 * training → model version → manifests → image builds → devices, one column of boxes per stage.
 * Boxes with a page of their own link to it. At phone width the columns stack top to bottom.
 */
import type { ComponentChildren } from 'preact';
import type { ModelLineage } from '../../../shared/api/lineage.js';
import { seg } from '../api.js';
import { Digest } from './digest.js';
import { StatusBadge } from './status-badge.js';
import './lineage-chain.css';

export const modelHref = (name: string, version: number) => `/ui/models/${seg(name)}?version=${version}`;

function Stage({ title, count, empty, children }: { title: string; count?: number; empty: string; children: ComponentChildren[] }) {
  return (
    <li class="stage">
      <h3>
        {title}
        {count === undefined ? null : <span class="muted"> ({count})</span>}
      </h3>
      <ul>{children.length > 0 ? children : <li class="node none">{empty}</li>}</ul>
    </li>
  );
}

function Training({ lineage }: { lineage: ModelLineage }) {
  const { training, parent } = lineage;
  const boxes: ComponentChildren[] = [];
  if (parent) {
    boxes.push(
      <li class="node" key="parent">
        trained from{' '}
        <a href={modelHref(parent.name, parent.version)}>
          {parent.name}:{parent.version}
        </a>
      </li>,
    );
  }
  if (training) {
    const metrics = Object.entries(training.metrics);
    boxes.push(
      <li class="node" key="run">
        {training.job && training.run ? (
          <strong>
            <a href={`/ui/retraining/runs/${seg(training.run)}`}>
              {training.job} run {training.run}
            </a>
          </strong>
        ) : training.job ? (
          <strong>{training.job}</strong>
        ) : training.runId ? (
          <strong>run {training.runId}</strong>
        ) : (
          <strong>training</strong>
        )}
        {training.trainer ? (
          <span>
            trainer {training.trainer.name}:{training.trainer.version}
          </span>
        ) : null}
        {training.labels ? <span>{training.labels.count} labels</span> : null}
        {metrics.length > 0 ? <span class="muted">{metrics.map(([k, v]) => `${k} ${v}`).join(' · ')}</span> : null}
      </li>,
    );
  }
  return (
    <Stage title="Training" empty="not recorded">
      {boxes}
    </Stage>
  );
}

function Datasets({ lineage }: { lineage: ModelLineage }) {
  const boxes = lineage.datasets.map((d) => (
    <li class="node" key={`${d.name}:${d.version}`}>
      <strong>
        {d.name}:{d.version}
      </strong>
      <Digest value={d.digest} />
    </li>
  ));
  // A version registered with `--dataset REF` names its data, though not a registered dataset.
  if (boxes.length === 0 && lineage.training?.dataset) {
    boxes.push(
      <li class="node" key="ref">
        <code>{lineage.training.dataset}</code>
      </li>,
    );
  }
  return (
    <Stage title="Datasets" empty="not recorded">
      {boxes}
    </Stage>
  );
}

export function LineageChain({ lineage }: { lineage: ModelLineage }) {
  const { model } = lineage;
  return (
    <ol class="lineage" aria-label={`Lineage of ${model.name}:${model.version}, from data to devices`}>
      <Datasets lineage={lineage} />
      <Training lineage={lineage} />
      <Stage title="Model version" empty="">
        {[
          <li class="node current" key="model">
            <strong>
              {model.name}:{model.version}
            </strong>
            <Digest value={model.digest} />
            {model.aliases.length > 0 ? <span>{model.aliases.map((a) => `@${a}`).join(' ')}</span> : null}
          </li>,
        ]}
      </Stage>
      <Stage title="Manifests" count={lineage.manifests.length} empty="no manifest includes it">
        {lineage.manifests.map((m) => (
          <li class="node" key={`${m.name}:${m.version}`}>
            <strong>
              {m.name}:{m.version}
            </strong>
          </li>
        ))}
      </Stage>
      <Stage title="Image builds" count={lineage.images.length} empty="not built">
        {lineage.images.map((i) => (
          <li class="node" key={i.id}>
            <a href={`/ui/builds/${seg(i.id)}`}>
              <strong>build {i.id}</strong>
            </a>
            <span>
              {i.manifest.name}:{i.manifest.version} <StatusBadge status={i.status} />
            </span>
            <span class="muted">{Object.keys(i.platforms).join(', ')}</span>
          </li>
        ))}
      </Stage>
      <Stage title="Devices" count={lineage.placements.length} empty={lineage.unresolved.length > 0 ? 'none for certain' : 'no device runs it'}>
        {lineage.placements.map((p) => (
          <DeviceNode key={`${p.device}/${p.service}`} service={p} note={`from build ${p.build}`} />
        ))}
      </Stage>
      {lineage.unresolved.length > 0 ? (
        <Stage title="May run it" count={lineage.unresolved.length} empty="">
          {lineage.unresolved.map((u) => (
            <DeviceNode key={`${u.device}/${u.service}`} service={u} note="its serving image is not one the hub built: the hub cannot tell" />
          ))}
        </Stage>
      ) : null}
    </ol>
  );
}

type ServiceOnDevice = Pick<ModelLineage['placements'][number], 'device' | 'deviceStatus' | 'service' | 'revision' | 'servingRevision' | 'phase'>;

function DeviceNode({ service: p, note }: { service: ServiceOnDevice; note: string }) {
  return (
    <li class="node">
      <a href={`/ui/devices/${seg(p.device)}`}>
        <strong>{p.device}</strong>
      </a>
      <StatusBadge status={p.deviceStatus} />
      <span>
        <a href={`/ui/deployments/${seg(p.service)}`}>{p.service}</a> revision {p.servingRevision} ·{' '}
        {/* As the CLI's where: the phase belongs to the revision being rolled out; name it when it is not the serving one. */}
        {p.servingRevision === p.revision ? null : `r${p.revision} `}
        <StatusBadge status={p.phase} />
      </span>
      <span class="muted">{note}</span>
    </li>
  );
}
