/**
 * Human renderings of which model versions run where (`edgeml model where`, the services of
 * `edgeml device show`); `--json` prints the hub's answers themselves.
 */
import type { ModelVersionRef, ModelWhere, ServingService, UnresolvedService } from '../../shared/api/where.js';
import { renderTable, shortDigest } from '../output.js';

type PhaseOf = Pick<ServingService, 'phase' | 'revision' | 'servingRevision'>;

const UNKNOWN_REVISION = 'an older revision whose image no device reports any more';

/**
 * The reported phase is about the revision being rolled out: next to an older serving revision it
 * names that revision, so `failed` does not read as "what serves has failed".
 */
export function servicePhase(s: PhaseOf): string {
  return s.servingRevision === null || s.servingRevision === s.revision ? s.phase : `${s.phase} (revision ${s.revision})`;
}

const modelText = (m: ModelVersionRef) => `${m.name}:${m.version}`;

/** `?` where the hub cannot tell, `-` where there is nothing to tell. */
function imageText(s: ServingService): string {
  if (s.digest !== null) return shortDigest(s.digest);
  if (s.image !== null) return s.image;
  return s.servingRevision === null ? '-' : '?';
}

function modelsText(models: ServingService['models']): string {
  if (models === null) return '?';
  return models.length ? models.map(modelText).join(',') : '-';
}

export function renderServices(services: readonly ServingService[]): string {
  const table = renderTable(
    ['SERVICE', 'SERVING', 'PHASE', 'IMAGE', 'MODELS'],
    services.map((s) => [s.name, s.servingRevision === null ? '-' : String(s.servingRevision), servicePhase(s), imageText(s), modelsText(s.models)]),
    '(no services)',
  );
  return services.some((s) => s.models === null) ? `${table}?: the hub cannot tell (${UNKNOWN_REVISION})\n` : table;
}

const placeRow = (p: UnresolvedService) => [p.device, p.deviceStatus, p.service, String(p.servingRevision)];

export function renderModelWhere(w: ModelWhere): string {
  const wanted = w.version === null ? w.model : `${w.model}:${w.version}`;
  const table = renderTable(
    ['DEVICE', 'STATUS', 'SERVICE', 'REVISION', 'MODEL', 'IMAGE', 'PHASE'],
    w.placements.map((p) => [...placeRow(p), modelText(p.model), shortDigest(p.digest), servicePhase(p)]),
    `(no device runs ${wanted})`,
  );
  if (!w.unresolved.length) return table;
  const unresolved = renderTable(
    ['DEVICE', 'STATUS', 'SERVICE', 'REVISION', 'PHASE'],
    w.unresolved.map((u) => [...placeRow(u), servicePhase(u)]),
  );
  return `${table}\nthe hub cannot tell what these serve (${UNKNOWN_REVISION}):\n${unresolved}`;
}
