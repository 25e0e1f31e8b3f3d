/**
 * What the hub keeps, as repositories. The embedded default is lowdb (`lowdb-store.ts`); a server
 * database can implement the same interface when a fleet outgrows one machine. Every write method
 * resolves only once the change is durable ("write, then answer").
 */
import type { ApiKeyInfo } from '../../shared/api/apikeys.js';
import type { Actor } from '../../shared/api/common.js';
import type { Deployment } from '../../shared/api/deployments.js';
import type { Rollout } from '../../shared/api/rollouts.js';
import type { ModelUpdate } from '../../shared/api/model-updates.js';
import type { DatasetVersion } from '../../shared/api/datasets.js';
import type { TrainerImage, TrainerVersion } from '../../shared/api/trainers.js';
import type { RetrainingJob, RetrainingRun } from '../../shared/api/retraining.js';
import type { Labels } from '../../shared/api/devices.js';
import type { Image, ImageStatus } from '../../shared/api/images.js';
import type { DesiredService, DeviceFacts, ReportedState, ServiceScale } from '../../shared/protocol.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { ModelVersion } from '../../shared/api/models.js';
import type { Static } from '@sinclair/typebox';

/** Marks a record made under an Idempotency-Key, in the record's own write (hub/http/idempotency.ts). */
export interface IdempotencyMark {
  key: string;
  /** sha256 of the request, base64url: the same key for another request is refused. */
  fingerprint: string;
}

/** Who made a record; views leave `idempotency` out (the response schemas have no such field). */
export type ActorRecord = Static<typeof Actor> & { idempotency?: IdempotencyMark };

export interface ApiKeyRecord extends Omit<ApiKeyInfo, 'rotations'> {
  /** sha256 of the key's secret part, hex. */
  hash: string;
  /** Secrets a rotation replaced, valid until their time (the grace). Absent: none. */
  previousHashes?: PreviousSecret[];
  /** Rotations of the secret, oldest first. Absent: none. */
  rotations?: RotationRecord[];
}

/**
 * One rotation of a secret (device token, API key, service key). `by` keeps its Idempotency-Key
 * mark, so a retried rotation finds itself (views leave the mark out).
 */
export interface RotationRecord {
  at: string;
  by: ActorRecord;
  /** Until when the replaced secret still works; null: it stopped at once. */
  previousValidUntil: string | null;
}

/** A replaced secret (device token, API key) during its grace. */
export interface PreviousSecret {
  hash: string;
  validUntil: string;
}

/** A certificate the hub's CA issued to a device: kept so a revocation can list its serial. */
export interface IssuedCertificate {
  /** Hex, as in the certificate and the CRL. */
  serial: string;
  purpose: 'gateway' | 'client';
  /** DNS names and IP addresses (gateway), or the device id (client). */
  names: string[];
  notBefore: string;
  notAfter: string;
}

/** A stored model version; `aliases` is derived when read. */
export type ModelVersionRecord = Omit<ModelVersion, 'aliases'>;
export type NewModelVersion = Omit<ModelVersionRecord, 'version'>;
export type NewManifestVersion = Omit<ManifestVersion, 'version'>;

export interface ModelSummaryView {
  name: string;
  latest: number;
  aliases: Record<string, number>;
  versions: ModelVersion[];
}

/** A version in a request: a number, `latest`, or an alias. */
export type VersionSelector = { version: number } | { latest: true } | { alias: string };

export interface ApiKeyRepository {
  list(): Promise<ApiKeyRecord[]>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  add(record: ApiKeyRecord): Promise<void>;
  /** Applies `change` to the stored record in one write; HUB_E_APIKEY_NOT_FOUND (404). */
  update(id: string, change: (record: ApiKeyRecord) => void): Promise<ApiKeyRecord>;
  /** Refuses (409) to revoke the last active admin key: nobody could manage keys afterwards. */
  revoke(id: string, at: string): Promise<ApiKeyRecord>;
}

export interface ModelRepository {
  /** Assigns the next version of `draft.name` (never reused, even after a delete). */
  addVersion(draft: NewModelVersion): Promise<ModelVersion>;
  list(filter: { name?: string; tags?: Record<string, string> }): Promise<ModelVersion[]>;
  summary(name: string): Promise<ModelSummaryView | undefined>;
  /** Throws HUB_E_MODEL_NOT_FOUND (404) naming what was asked for. */
  resolve(name: string, selector: VersionSelector): Promise<ModelVersion>;
  setAlias(name: string, alias: string, version: number): Promise<{ previous: number | null }>;
  deleteAlias(name: string, alias: string): Promise<void>;
  /** Throws HUB_E_CONFLICT (409) naming what still references the version (aliases, manifests). */
  deleteVersion(name: string, version: number): Promise<void>;
}

export interface ManifestRepository {
  /** Checks, in the same write, that each pinned model version still exists with that digest. */
  addVersion(draft: NewManifestVersion): Promise<ManifestVersion>;
  list(filter: { name?: string }): Promise<ManifestVersion[]>;
  resolve(name: string, selector: VersionSelector): Promise<ManifestVersion>;
}

/** A stored image; `progress` is live state and never stored. */
export type ImageRecord = Omit<Image, 'progress'>;
export type NewImage = Omit<ImageRecord, 'id'>;

export interface ImageRepository {
  /** Assigns the next build number. */
  add(draft: NewImage): Promise<ImageRecord>;
  /** Applies `change` to the stored record in one write; throws HUB_E_IMAGE_NOT_FOUND (404). */
  update(id: number, change: (record: ImageRecord) => void): Promise<ImageRecord>;
  get(id: number): Promise<ImageRecord | undefined>;
  /** Oldest first. */
  list(filter: { manifest?: string | undefined; status?: ImageStatus | undefined }): Promise<ImageRecord[]>;
}

/** What the devices said about themselves: written in batches, not per message. */
export interface DeviceObservation {
  status: 'online' | 'offline' | null;
  offlineReason: 'shutdown' | 'lost' | null;
  onlineSince: string | null;
  lastSeen: string | null;
  facts: DeviceFacts | null;
  /** Since schema 4; absent in older records. */
  gateway?: string | null;
  /** What the device last reported about its services. Since schema 5; absent in older records. */
  reported?: ReportedState | null;
}

export interface DeviceRecord {
  id: string;
  labels: Labels;
  /** sha256 of the device token, hex. */
  tokenHash: string;
  enrolledAt: string;
  enrolledBy: ActorRecord;
  revokedAt: string | null;
  observed: DeviceObservation;
  /** Tokens a rotation replaced, during their grace. Absent: none. */
  previousTokens?: PreviousSecret[];
  /** Unexpired certificates issued to the device, newest last. Absent: none. */
  certificates?: IssuedCertificate[];
  /** Rotations of the token, oldest first. Absent: none. */
  rotations?: RotationRecord[];
}

export interface DeviceRepository {
  /** Refuses (409) an id that exists, revoked or not: a device id is never reused. */
  add(record: DeviceRecord): Promise<DeviceRecord>;
  list(): Promise<DeviceRecord[]>;
  /** One device as stored (a copy), or undefined: for what only the store has, like its certificates. */
  get(id: string): Promise<DeviceRecord | undefined>;
  /** Throws HUB_E_DEVICE_NOT_FOUND (404). */
  setLabels(id: string, labels: Labels): Promise<DeviceRecord>;
  revoke(id: string, at: string): Promise<DeviceRecord>;
  /** Applies `change` to the stored record in one write; HUB_E_DEVICE_NOT_FOUND (404). */
  update(id: string, change: (record: DeviceRecord) => void): Promise<DeviceRecord>;
  /** One write for many devices; unknown ids are skipped. */
  saveObservations(observations: ReadonlyMap<string, DeviceObservation>): Promise<void>;
}

export interface DeploymentRecord extends Omit<Deployment, 'capture' | 'scale' | 'deletedAt' | 'deletedBy' | 'rotations'> {
  /** Absent in deployments stored before capture existed: off (`captureOff()`). */
  capture?: Deployment['capture'];
  /** Replicas per device, like the limits the deployment's (not a revision's). Absent: DEFAULT_SCALE (1..1). */
  scale?: ServiceScale;
  /** Set on a deleted deployment (kept in its own collection, see DeploymentRepository.delete). */
  deletedAt?: string;
  deletedBy?: ActorRecord;
  /** sha256 of the service API key, hex: what devices check requests against. */
  keyHash: string;
  /**
   * Devices a rollout has moved off the stable revision, and to which (null: no service). A device's
   * desired revision is its assignment, else `stableRevision`, as long as it matches the target
   * (or a running retarget, or its rollback, still holds it: desired-states.ts).
   */
  assignments: Record<string, number | null>;
  /** Keys replaced by `rotate-key`, still valid until their time. Absent: none. */
  previousKeys?: PreviousKey[];
  /** Changes made under an Idempotency-Key (update, rotate-key), kept a while for retries. Absent: none. */
  changedBy?: DeploymentChange[];
  /** Rotations of the service key, oldest first. Absent: none. */
  rotations?: RotationRecord[];
}

export type PreviousKey = NonNullable<DesiredService['previousKeys']>[number];

export interface DeploymentChange {
  op: 'update' | 'rotate-key';
  at: string;
  by: ActorRecord;
  /** rotate-key: until when the key it replaced stays valid. */
  previousKeyValidUntil?: string;
}

export type RolloutOptions = Rollout['options'];

export interface RolloutDeviceRecord {
  batch: number;
  /** The revision it had before (what a rollback returns it to), and the one this rollout gives it. */
  from: number | null;
  to: number | null;
  state: 'waiting' | 'moving' | 'healthy' | 'failed' | 'rolled-back';
  movedAt: string | null;
  /** When a device moving (and online) counts as failed; set once it is seen online. */
  deadline: string | null;
  doneAt: string | null;
  error: string | null;
}

export interface RolloutRecord {
  id: number;
  service: string;
  kind: Rollout['kind'];
  revision: number | null;
  fromRevision: number | null;
  strategy: Rollout['strategy'];
  /** A retarget's selectors. Absent for other kinds. */
  target?: { from: Labels; to: Labels };
  options: RolloutOptions;
  phase: Rollout['phase'];
  reason: string | null;
  batchCount: number;
  batch: number;
  soakUntil: string | null;
  rolledBackBy: number | null;
  rollbackOf: number | null;
  devices: Record<string, RolloutDeviceRecord>;
  /** Each gate's last figures, measured by the controller after a batch's soak (hub/fleet/rollout-gates*.ts); absent: none yet. */
  gates?: Rollout['gates'];
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  createdBy: ActorRecord | null;
}

export interface RolloutRepository {
  /**
   * Stores a new rollout (its id given here) and, in the same write, adds its deployment (`add`) or
   * changes it (`update`): a crash never leaves one without the other.
   */
  start(
    rollout: Omit<RolloutRecord, 'id'>,
    deployment: { add: (id: number) => DeploymentRecord } | { update: (d: DeploymentRecord, id: number) => void },
    /** Another rollout changed in the same write (superseded, or aborted by this rollback). */
    previous?: { id: number; change: (r: RolloutRecord, newId: number) => void } | undefined,
  ): Promise<{ rollout: RolloutRecord; deployment: DeploymentRecord }>;
  /** Changes a rollout and its deployment in one write; HUB_E_ROLLOUT_NOT_FOUND (404). */
  update(id: number, change: (rollout: RolloutRecord, deployment: DeploymentRecord) => void): Promise<{ rollout: RolloutRecord; deployment: DeploymentRecord }>;
  get(id: number): Promise<RolloutRecord | undefined>;
  /** Newest first. */
  list(filter: { service?: string; active?: boolean }): Promise<RolloutRecord[]>;
}

/** What the hub last told a device to run: its generation only moves forward. */
export interface DesiredRecord {
  generation: number;
  services: DesiredService[];
}

export interface DeploymentRepository {
  /** Refuses (409) a service name that exists. */
  add(record: DeploymentRecord): Promise<DeploymentRecord>;
  /** Applies `change` to the stored record in one write; HUB_E_DEPLOYMENT_NOT_FOUND (404). */
  update(service: string, change: (record: DeploymentRecord) => void): Promise<DeploymentRecord>;
  get(service: string): Promise<DeploymentRecord | undefined>;
  list(): Promise<DeploymentRecord[]>;
  /**
   * In one write: moves the deployment to the deleted ones (with `deletedAt`, `deletedBy`) and aborts
   * its active rollout (with `reason`) without a rollback; HUB_E_DEPLOYMENT_NOT_FOUND (404). The name
   * is free again; the record, its revisions and its rollouts stay.
   */
  delete(service: string, at: string, by: ActorRecord, reason: string): Promise<DeploymentRecord>;
  /** Deleted deployments, oldest deletion first; a name deployed and deleted twice is there twice. */
  listDeleted(): Promise<DeploymentRecord[]>;
}

export interface DesiredRepository {
  /**
   * Generations count within an epoch, and devices refuse a lower generation only within one. A new
   * epoch at every hub start covers a store restored from a backup (lower generations than devices
   * saw) and one that started afresh (counting from 1 again).
   */
  epoch(): string;
  /** A new epoch, stored; called once as the hub starts, before it publishes anything. */
  renewEpoch(): Promise<string>;
  all(): Promise<Map<string, DesiredRecord>>;
  /** One write for every device whose desired state changed. */
  save(changes: ReadonlyMap<string, DesiredRecord>): Promise<void>;
}

/** A retraining job as stored; views add its last run. */
export type RetrainingJobRecord = Omit<RetrainingJob, 'lastRun' | 'createdBy'> & { createdBy: ActorRecord };
export type RetrainingRunRecord = Omit<RetrainingRun, 'createdBy'> & { createdBy: ActorRecord | null };

export interface RetrainingRepository {
  /** Refuses (409) a job name that exists. */
  addJob(job: RetrainingJobRecord): Promise<RetrainingJobRecord>;
  getJob(name: string): Promise<RetrainingJobRecord | undefined>;
  /** By name. */
  listJobs(): Promise<RetrainingJobRecord[]>;
  /**
   * Stores a new run (its id given here) and, in the same write, the job's new `labelsSince`;
   * HUB_E_RETRAINING_JOB_NOT_FOUND (404), HUB_E_CONFLICT (409) while the job has a run queued or running.
   */
  addRun(run: Omit<RetrainingRunRecord, 'id'>, labelsSince: string): Promise<RetrainingRunRecord>;
  /** Applies `change` to the stored run in one write; HUB_E_RETRAINING_RUN_NOT_FOUND (404). */
  updateRun(id: number, change: (run: RetrainingRunRecord) => void): Promise<RetrainingRunRecord>;
  getRun(id: number): Promise<RetrainingRunRecord | undefined>;
  /** Newest first. */
  listRuns(filter: { job?: string; active?: boolean }): Promise<RetrainingRunRecord[]>;
  /** Adds the evaluation's figures to the lineage of the candidate a run registered (its other fields never change). */
  addLineageMetrics(model: { name: string; version: number }, metrics: Record<string, number>): Promise<void>;
}

/** A stored trainer version; `image` is the state of its (one) image build. */
export type TrainerVersionRecord = Omit<TrainerVersion, 'createdBy'> & { createdBy: ActorRecord };
export type NewTrainerVersion = Omit<TrainerVersionRecord, 'version'>;

export interface TrainerRepository {
  /** Assigns the next version of `draft.name`. */
  addVersion(draft: NewTrainerVersion): Promise<TrainerVersionRecord>;
  /** By name, then version. */
  list(filter: { name?: string | undefined }): Promise<TrainerVersionRecord[]>;
  /** Throws HUB_E_TRAINER_NOT_FOUND (404) naming what was asked for (trainers have no aliases). */
  resolve(name: string, selector: VersionSelector): Promise<TrainerVersionRecord>;
  /** Applies `change` to the version's image state in one write; HUB_E_TRAINER_NOT_FOUND (404). */
  updateImage(name: string, version: number, change: (image: TrainerImage) => void): Promise<TrainerVersionRecord>;
}

/** A stored base dataset version: the JSONL file is the blob `digest`. */
export type DatasetVersionRecord = Omit<DatasetVersion, 'createdBy'> & { createdBy: ActorRecord };
export type NewDatasetVersion = Omit<DatasetVersionRecord, 'version'>;

export interface DatasetRepository {
  /** Assigns the next version of `draft.name` (immutable once made). */
  addVersion(draft: NewDatasetVersion): Promise<DatasetVersionRecord>;
  /** By name, then version. */
  list(filter: { name?: string | undefined }): Promise<DatasetVersionRecord[]>;
  /** Throws HUB_E_DATASET_NOT_FOUND (404) naming what was asked for (datasets have no aliases). */
  resolve(name: string, selector: VersionSelector): Promise<DatasetVersionRecord>;
}

/** A stored one-command model update (hub/fleet/model-update.ts). */
export type ModelUpdateRecord = Omit<ModelUpdate, 'createdBy'> & { createdBy: ActorRecord };

export interface ModelUpdateRepository {
  /** Assigns the next id. */
  add(draft: Omit<ModelUpdateRecord, 'id'>): Promise<ModelUpdateRecord>;
  /** Applies `change` in one write; HUB_E_MODEL_UPDATE_NOT_FOUND (404). */
  update(id: number, change: (record: ModelUpdateRecord) => void): Promise<ModelUpdateRecord>;
  get(id: number): Promise<ModelUpdateRecord | undefined>;
  /** Oldest first. */
  list(): Promise<ModelUpdateRecord[]>;
}

export interface HubStore {
  readonly apiKeys: ApiKeyRepository;
  readonly models: ModelRepository;
  readonly manifests: ManifestRepository;
  readonly images: ImageRepository;
  readonly devices: DeviceRepository;
  readonly deployments: DeploymentRepository;
  readonly desired: DesiredRepository;
  readonly rollouts: RolloutRepository;
  readonly datasets: DatasetRepository;
  readonly modelUpdates: ModelUpdateRepository;
  readonly retraining: RetrainingRepository;
  readonly trainers: TrainerRepository;
  /** Every blob digest some record points at; blobs outside it are garbage. */
  referencedBlobs(): Promise<Set<string>>;
}
