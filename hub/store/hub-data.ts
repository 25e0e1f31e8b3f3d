/**
 * The shape of the lowdb document and its schema version. A file written by a newer hub is
 * refused rather than misread; older versions are migrated here, step by step, when they exist.
 */
import { randomBytes } from 'node:crypto';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { HUB_EPOCH_PATTERN } from '../../shared/protocol.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { ApiKeyRecord, DeploymentRecord, DesiredRecord, DeviceRecord, ImageRecord, ModelVersionRecord, RolloutRecord } from './store.js';

export const STORE_SCHEMA_VERSION = 7;

export interface ModelEntry {
  /** Versions are never reused, so a deleted `3` can never come back with other bytes. */
  nextVersion: number;
  aliases: Record<string, number>;
  versions: ModelVersionRecord[];
}

export interface ManifestEntry {
  nextVersion: number;
  versions: ManifestVersion[];
}

export interface HubData {
  schemaVersion: number;
  apiKeys: ApiKeyRecord[];
  models: Record<string, ModelEntry>;
  manifests: Record<string, ManifestEntry>;
  /** Since schema 2. */
  images: { nextId: number; records: ImageRecord[] };
  /** Since schema 3. */
  devices: Record<string, DeviceRecord>;
  /** Since schema 4: by service name, and each device's desired state by device id. */
  deployments: Record<string, DeploymentRecord>;
  desired: Record<string, DesiredRecord>;
  /** Since schema 5: the epoch desired-state generations count in (see DesiredRepository). */
  epoch: string;
  /** Since schema 6; deployments gained their revision history, stable revision and assignments. */
  rollouts: { nextId: number; records: RolloutRecord[] };
  /** Since schema 7: deployments `service delete` removed, oldest deletion first (their names are free again). */
  deletedDeployments: DeploymentRecord[];
}

/** 128 random bits, hex: two stores never share one. */
export function newEpoch(): string {
  return randomBytes(16).toString('hex');
}

export function emptyHubData(): HubData {
  return {
    schemaVersion: STORE_SCHEMA_VERSION,
    apiKeys: [],
    models: {},
    manifests: {},
    images: { nextId: 1, records: [] },
    devices: {},
    deployments: {},
    desired: {},
    epoch: newEpoch(),
    rollouts: { nextId: 1, records: [] },
    deletedDeployments: [],
  };
}

/** Each step takes the document from version `from` to `from + 1`, in place. */
const MIGRATIONS: Array<{ from: number; apply: (data: HubData) => void }> = [
  {
    from: 1,
    apply: (data) => {
      data.images = { nextId: 1, records: [] };
    },
  },
  {
    from: 2,
    apply: (data) => {
      data.devices = {};
    },
  },
  {
    from: 3,
    apply: (data) => {
      data.deployments = {};
      data.desired = {};
    },
  },
  {
    from: 4,
    apply: (data) => {
      data.epoch = newEpoch();
    },
  },
  {
    from: 5,
    apply: (data) => {
      // Rollouts before this were all-at-once and are over: every device is on the current revision.
      for (const d of Object.values(data.deployments) as Array<DeploymentRecord & { rollout: { startedAt?: string; devices: string[] } }>) {
        d.revisions = [{ revision: d.revision, image: d.image, digest: d.digest, build: d.build, models: d.models, limits: d.limits, createdAt: d.updatedAt }];
        d.stableRevision = d.revision;
        d.assignments = {};
        d.rollout = { id: 0, kind: d.revision === 1 ? 'create' : 'update', revision: d.revision, strategy: 'all-at-once', phase: 'succeeded', devices: d.rollout.devices };
      }
      data.rollouts = { nextId: 1, records: [] };
    },
  },
  {
    from: 6,
    apply: (data) => {
      // Deployments without `scale` read as one replica: nothing else changes.
      data.deletedDeployments = [];
    },
  },
];

/**
 * Checks a document read from `path` and brings an older one up to STORE_SCHEMA_VERSION in place
 * (the caller writes it back). A damaged or newer document is refused, never overwritten.
 */
export function loadHubData(data: HubData, path: string): HubData {
  if (typeof data !== 'object' || data === null || typeof data.schemaVersion !== 'number') {
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} has no schemaVersion: it is not an edgeml hub store`);
  }
  const isRecord = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!Array.isArray(data.apiKeys) || !isRecord(data.models) || !isRecord(data.manifests)) {
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} lacks apiKeys, models or manifests: it is damaged`);
  }
  if (!Number.isInteger(data.schemaVersion) || data.schemaVersion < 1) {
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} has schema version ${String(data.schemaVersion)}: it is damaged`);
  }
  if (data.schemaVersion > STORE_SCHEMA_VERSION) {
    throw new EdgemlError(
      ErrorCodes.HUB_STORE_VERSION,
      `store file ${path} has schema version ${data.schemaVersion}, but this hub understands up to ${STORE_SCHEMA_VERSION}: upgrade edgeml`,
    );
  }
  for (const step of MIGRATIONS) {
    if (data.schemaVersion !== step.from) continue;
    step.apply(data);
    data.schemaVersion = step.from + 1;
  }
  if (!isRecord(data.images) || !Array.isArray(data.images.records) || !Number.isInteger(data.images.nextId)) {
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} lacks images: it is damaged`);
  }
  if (!isRecord(data.rollouts) || !Array.isArray(data.rollouts.records) || !Number.isInteger(data.rollouts.nextId)) {
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} lacks rollouts: it is damaged`);
  }
  if (!Array.isArray(data.deletedDeployments)) throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} lacks deletedDeployments: it is damaged`);
  for (const key of ['devices', 'deployments', 'desired'] as const) {
    if (!isRecord(data[key])) throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} lacks ${key}: it is damaged`);
  }
  if (typeof data.epoch !== 'string' || !new RegExp(HUB_EPOCH_PATTERN).test(data.epoch)) {
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} lacks a valid epoch: it is damaged`);
  }
  return data;
}
