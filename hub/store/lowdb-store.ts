/**
 * The embedded store: one lowdb JSON document. Writes go through one queue, each on a copy of the
 * committed data, so a failed write or a rejected change leaves nothing half-applied, and readers
 * only ever see data that is already on disk.
 */
import { Low, type Adapter } from 'lowdb';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import { ACTIVE_ROLLOUT_PHASES } from '../../shared/api/rollouts.js';
import { ACTIVE_RUN_STATUSES } from '../../shared/api/retraining.js';
import type { ModelVersion } from '../../shared/api/models.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { DurableJsonFile, removeStaleTemps } from './durable-json-file.js';
import { emptyHubData, loadHubData, newEpoch, type HubData, type ModelEntry } from './hub-data.js';
import type {
  ApiKeyRepository,
  DeploymentRecord,
  DeploymentRepository,
  DesiredRepository,
  DatasetRepository,
  DatasetVersionRecord,
  DeviceRepository,
  HubStore,
  ImageRecord,
  ImageRepository,
  ManifestRepository,
  ModelRepository,
  ModelUpdateRecord,
  ModelUpdateRepository,
  ModelSummaryView,
  ModelVersionRecord,
  NewImage,
  NewManifestVersion,
  NewModelVersion,
  RolloutRecord,
  RolloutRepository,
  NewTrainerVersion,
  TrainerRepository,
  TrainerVersionRecord,
  RetrainingJobRecord,
  RetrainingRepository,
  RetrainingRunRecord,
  VersionSelector,
} from './store.js';

/**
 * Lookups by user-chosen name must not see `Object.prototype`: a model called `constructor` is
 * a valid name, not a built-in.
 */
function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function ownOrSet<T>(record: Record<string, T>, key: string, make: () => T): T {
  if (!Object.hasOwn(record, key)) record[key] = make();
  return record[key]!;
}

function notFound(
  code:
    | typeof ErrorCodes.HUB_MODEL_NOT_FOUND
    | typeof ErrorCodes.HUB_MANIFEST_NOT_FOUND
    | typeof ErrorCodes.HUB_APIKEY_NOT_FOUND
    | typeof ErrorCodes.HUB_IMAGE_NOT_FOUND
    | typeof ErrorCodes.HUB_DEVICE_NOT_FOUND
    | typeof ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND
    | typeof ErrorCodes.HUB_ROLLOUT_NOT_FOUND
    | typeof ErrorCodes.HUB_TRAINER_NOT_FOUND
    | typeof ErrorCodes.HUB_RETRAINING_JOB_NOT_FOUND
    | typeof ErrorCodes.HUB_RETRAINING_RUN_NOT_FOUND,
  message: string,
) {
  return new EdgemlError(code, message, { httpStatus: 404 });
}

function conflict(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_CONFLICT, message, { httpStatus: 409 });
}

function describeSelector(name: string, selector: VersionSelector): string {
  if ('version' in selector) return `${name}:${selector.version}`;
  if ('alias' in selector) return `${name}@${selector.alias}`;
  return `${name}:latest`;
}

function withAliases(entry: ModelEntry, record: ModelVersionRecord): ModelVersion {
  const aliases = Object.entries(entry.aliases)
    .filter(([, v]) => v === record.version)
    .map(([a]) => a)
    .sort();
  return { ...record, aliases };
}

function pick<T extends { version: number }>(versions: T[], selector: { version: number } | { latest: true }): T | undefined {
  if ('version' in selector) return versions.find((v) => v.version === selector.version);
  return versions.at(-1);
}

/**
 * Retraining jobs and runs: an optional part of the document (absent reads as none), so stores
 * written before it need no migration.
 */
interface RetrainingData {
  jobs: Record<string, RetrainingJobRecord>;
  runs: { nextId: number; records: RetrainingRunRecord[] };
}

function storedRetraining(data: HubData): RetrainingData | undefined {
  return (data as HubData & { retraining?: RetrainingData }).retraining;
}

/** In a write: the part, made if absent. */
function retrainingOf(draft: HubData): RetrainingData {
  return ((draft as HubData & { retraining?: RetrainingData }).retraining ??= { jobs: {}, runs: { nextId: 1, records: [] } });
}

/**
 * Trainer versions by name: an optional part of the document (absent reads as none), so stores
 * written before it need no migration.
 */
type TrainerData = Record<string, { nextVersion: number; versions: TrainerVersionRecord[] }>;

function storedTrainers(data: HubData): TrainerData {
  return (data as HubData & { trainers?: TrainerData }).trainers ?? {};
}

/** In a write: the part, made if absent. */
function trainersOf(draft: HubData): TrainerData {
  return ((draft as HubData & { trainers?: TrainerData }).trainers ??= {});
}

/**
 * Base dataset versions by name: an optional part of the document (absent reads as none), so
 * stores written before it need no migration.
 */
type DatasetData = Record<string, { nextVersion: number; versions: DatasetVersionRecord[] }>;

function storedDatasets(data: HubData): DatasetData {
  return (data as HubData & { datasets?: DatasetData }).datasets ?? {};
}

/**
 * Model updates: an optional part of the document (absent reads as none), so stores written
 * before it need no migration.
 */
type ModelUpdateData = { nextId: number; records: ModelUpdateRecord[] };

function storedModelUpdates(data: HubData): ModelUpdateData {
  return (data as HubData & { modelUpdates?: ModelUpdateData }).modelUpdates ?? { nextId: 1, records: [] };
}

/** In a write: the part, made if absent. */
function modelUpdatesOf(draft: HubData): ModelUpdateData {
  return ((draft as HubData & { modelUpdates?: ModelUpdateData }).modelUpdates ??= { nextId: 1, records: [] });
}

/** The caller holds the data directory lock, so leftover temp files are a crash's, not a writer's. */
export async function openLowdbStore(path: string): Promise<LowdbHubStore> {
  await removeStaleTemps(path);
  return LowdbHubStore.open(new DurableJsonFile<HubData>(path), path);
}

export class LowdbHubStore implements HubStore {
  #committed: HubData;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly db: Low<HubData>,
    data: HubData,
  ) {
    this.#committed = data;
  }

  /** `label` names the store in errors (the file path). Tests pass lowdb's `Memory` adapter. */
  static async open(adapter: Adapter<HubData>, label: string): Promise<LowdbHubStore> {
    const db = new Low<HubData>(adapter, emptyHubData());
    await db.read();
    const store = new LowdbHubStore(db, loadHubData(db.data, label));
    // Persist a fresh or migrated store at once, so the file says which schema it holds.
    await store.write(() => undefined);
    return store;
  }

  private get data(): HubData {
    return this.#committed;
  }

  /** Applies `change` to a copy, writes it durably, then publishes it. Serialized. */
  private write<T>(change: (draft: HubData) => T): Promise<T> {
    const run = async (): Promise<T> => {
      const draft = structuredClone(this.#committed);
      const result = change(draft);
      this.db.data = draft;
      await this.db.write();
      this.#committed = draft;
      return result;
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  readonly apiKeys: ApiKeyRepository = {
    list: async () => this.data.apiKeys.map((k) => ({ ...k })),
    get: async (id) => this.data.apiKeys.find((k) => k.id === id),
    add: (record) =>
      this.write((d) => {
        if (d.apiKeys.some((k) => k.id === record.id)) throw conflict(`API key id ${record.id} exists`);
        d.apiKeys.push(record);
      }),
    update: (id, change) =>
      this.write((d) => {
        const key = d.apiKeys.find((k) => k.id === id);
        if (!key) throw notFound(ErrorCodes.HUB_APIKEY_NOT_FOUND, `API key ${id} not found`);
        change(key);
        return { ...key };
      }),
    revoke: (id, at) =>
      this.write((d) => {
        const key = d.apiKeys.find((k) => k.id === id);
        if (!key) throw notFound(ErrorCodes.HUB_APIKEY_NOT_FOUND, `API key ${id} not found`);
        if (key.revokedAt) return key;
        if (key.scope === 'admin' && !d.apiKeys.some((k) => k !== key && k.scope === 'admin' && !k.revokedAt)) {
          throw conflict(`API key ${id} is the last active admin key; create another admin key before revoking it`);
        }
        key.revokedAt = at;
        return key;
      }),
  };

  readonly models: ModelRepository = {
    addVersion: (draft: NewModelVersion) =>
      this.write((d) => {
        const entry = ownOrSet(d.models, draft.name, () => ({ nextVersion: 1, aliases: {}, versions: [] }));
        const record: ModelVersionRecord = { ...draft, version: entry.nextVersion };
        entry.nextVersion += 1;
        entry.versions.push(record);
        return withAliases(entry, record);
      }),

    list: async ({ name, tags }) => {
      const names = name ? [name] : Object.keys(this.data.models).sort();
      const wanted = Object.entries(tags ?? {});
      return names.flatMap((n) => {
        const entry = own(this.data.models, n);
        if (!entry) return [];
        return entry.versions.filter((v) => wanted.every(([k, val]) => own(v.tags, k) === val)).map((v) => withAliases(entry, v));
      });
    },

    summary: async (name): Promise<ModelSummaryView | undefined> => {
      const entry = own(this.data.models, name);
      const latest = entry?.versions.at(-1);
      if (!entry || !latest) return undefined;
      return { name, latest: latest.version, aliases: { ...entry.aliases }, versions: entry.versions.map((v) => withAliases(entry, v)) };
    },

    resolve: async (name, selector) => {
      const entry = own(this.data.models, name);
      if (!entry || entry.versions.length === 0) throw notFound(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${name} not found`);
      let wanted: { version: number } | { latest: true };
      if ('alias' in selector) {
        const target = own(entry.aliases, selector.alias);
        if (target === undefined) throw notFound(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${name} has no alias ${selector.alias}`);
        wanted = { version: target };
      } else {
        wanted = selector;
      }
      const record = pick(entry.versions, wanted);
      if (!record) throw notFound(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${describeSelector(name, selector)} not found`);
      return withAliases(entry, record);
    },

    setAlias: (name, alias, version) =>
      this.write((d) => {
        const entry = own(d.models, name);
        if (!entry?.versions.some((v) => v.version === version)) throw notFound(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${name}:${version} not found`);
        const previous = own(entry.aliases, alias) ?? null;
        entry.aliases[alias] = version;
        return { previous };
      }),

    deleteAlias: (name, alias) =>
      this.write((d) => {
        const entry = own(d.models, name);
        if (!entry || own(entry.aliases, alias) === undefined) throw notFound(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${name} has no alias ${alias}`);
        delete entry.aliases[alias];
      }),

    deleteVersion: (name, version) =>
      this.write((d) => {
        const entry = own(d.models, name);
        const index = entry?.versions.findIndex((v) => v.version === version) ?? -1;
        if (!entry || index < 0) throw notFound(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${name}:${version} not found`);
        const users = [
          ...Object.entries(entry.aliases)
            .filter(([, v]) => v === version)
            .map(([a]) => `alias ${a}`),
          ...Object.values(d.manifests).flatMap((m) =>
            m.versions.filter((mv) => mv.models.some((ref) => ref.name === name && ref.version === version)).map((mv) => `manifest ${mv.name}:${mv.version}`),
          ),
        ];
        if (users.length) throw conflict(`model ${name}:${version} is still referenced by ${users.join(', ')}`);
        entry.versions.splice(index, 1);
      }),
  };

  readonly manifests: ManifestRepository = {
    addVersion: (draft: NewManifestVersion) =>
      this.write((d) => {
        for (const ref of draft.models) {
          const still = own(d.models, ref.name)?.versions.find((v) => v.version === ref.version);
          if (still?.digest !== ref.digest) throw conflict(`model ${ref.name}:${ref.version} was deleted while the manifest was being created`);
        }
        const entry = ownOrSet(d.manifests, draft.name, () => ({ nextVersion: 1, versions: [] }));
        const record: ManifestVersion = { ...draft, version: entry.nextVersion };
        entry.nextVersion += 1;
        entry.versions.push(record);
        return record;
      }),

    list: async ({ name }) => {
      const names = name ? [name] : Object.keys(this.data.manifests).sort();
      return names.flatMap((n) => own(this.data.manifests, n)?.versions ?? []);
    },

    resolve: async (name, selector) => {
      const entry = own(this.data.manifests, name);
      if (!entry || entry.versions.length === 0) throw notFound(ErrorCodes.HUB_MANIFEST_NOT_FOUND, `manifest ${name} not found`);
      if ('alias' in selector) throw notFound(ErrorCodes.HUB_MANIFEST_NOT_FOUND, `manifests have no aliases (asked for ${name}@${selector.alias})`);
      const record = pick(entry.versions, selector);
      if (!record) throw notFound(ErrorCodes.HUB_MANIFEST_NOT_FOUND, `manifest ${describeSelector(name, selector)} not found`);
      return record;
    },
  };

  readonly images: ImageRepository = {
    add: (draft: NewImage) =>
      this.write((d) => {
        const record: ImageRecord = { id: d.images.nextId, ...draft };
        d.images.nextId += 1;
        d.images.records.push(record);
        return record;
      }),

    update: (id, change) =>
      this.write((d) => {
        const record = d.images.records.find((r) => r.id === id);
        if (!record) throw notFound(ErrorCodes.HUB_IMAGE_NOT_FOUND, `image ${id} not found`);
        change(record);
        return record;
      }),

    get: async (id) => this.data.images.records.find((r) => r.id === id),

    list: async ({ manifest, status }) =>
      this.data.images.records.filter((r) => (manifest === undefined || r.manifest.name === manifest) && (status === undefined || r.status === status)),
  };

  readonly devices: DeviceRepository = {
    add: (record) =>
      this.write((d) => {
        if (own(d.devices, record.id)) throw conflict(`device ${record.id} is already enrolled${own(d.devices, record.id)!.revokedAt ? ' (revoked; ids are not reused)' : ''}`);
        d.devices[record.id] = record;
        return structuredClone(record);
      }),

    list: async () =>
      Object.keys(this.data.devices)
        .sort()
        .map((id) => structuredClone(this.data.devices[id]!)),

    get: async (id) => {
      const device = own(this.data.devices, id);
      return device && structuredClone(device);
    },

    setLabels: (id, labels) =>
      this.write((d) => {
        const device = own(d.devices, id);
        if (!device) throw notFound(ErrorCodes.HUB_DEVICE_NOT_FOUND, `device ${id} not found`);
        device.labels = labels;
        return structuredClone(device);
      }),

    revoke: (id, at) =>
      this.write((d) => {
        const device = own(d.devices, id);
        if (!device) throw notFound(ErrorCodes.HUB_DEVICE_NOT_FOUND, `device ${id} not found`);
        device.revokedAt ??= at;
        return structuredClone(device);
      }),

    update: (id, change) =>
      this.write((d) => {
        const device = own(d.devices, id);
        if (!device) throw notFound(ErrorCodes.HUB_DEVICE_NOT_FOUND, `device ${id} not found`);
        change(device);
        return structuredClone(device);
      }),

    saveObservations: (observations) =>
      this.write((d) => {
        for (const [id, observed] of observations) {
          const device = own(d.devices, id);
          if (device) device.observed = observed;
        }
      }),
  };

  readonly deployments: DeploymentRepository = {
    add: (record) =>
      this.write((d) => {
        if (own(d.deployments, record.service)) throw conflict(`service ${record.service} is already deployed: move it with \`edgeml service update\``);
        d.deployments[record.service] = record;
        return structuredClone(record);
      }),

    update: (service, change) =>
      this.write((d) => {
        const record = own(d.deployments, service);
        if (!record) throw notFound(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${service} is not deployed`);
        change(record);
        return structuredClone(record);
      }),

    get: async (service) => {
      const record = own(this.data.deployments, service);
      return record && structuredClone(record);
    },

    list: async () =>
      Object.keys(this.data.deployments)
        .sort()
        .map((s) => structuredClone(this.data.deployments[s]!)),

    delete: (service, at, by, reason) =>
      this.write((d) => {
        const record = own(d.deployments, service);
        if (!record) throw notFound(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${service} is not deployed`);
        for (const r of d.rollouts.records) {
          if (r.service !== service || !ACTIVE_ROLLOUT_PHASES.includes(r.phase)) continue;
          Object.assign(r, { phase: 'aborted', reason, finishedAt: at, updatedAt: at });
          if (record.rollout.id === r.id) record.rollout.phase = 'aborted';
        }
        Object.assign(record, { deletedAt: at, deletedBy: by, updatedAt: at });
        delete d.deployments[service];
        d.deletedDeployments.push(record);
        return structuredClone(record);
      }),

    listDeleted: async () => structuredClone(this.data.deletedDeployments),
  };

  readonly rollouts: RolloutRepository = {
    start: (rollout, deployment, previous) =>
      this.write((d) => {
        const record: RolloutRecord = { ...structuredClone(rollout), id: d.rollouts.nextId };
        if (previous) {
          const other = d.rollouts.records.find((r) => r.id === previous.id);
          if (other) previous.change(other, record.id);
        }
        let target: DeploymentRecord;
        if ('add' in deployment) {
          if (own(d.deployments, rollout.service)) throw conflict(`service ${rollout.service} is already deployed: move it with \`edgeml service update\``);
          target = d.deployments[rollout.service] = structuredClone(deployment.add(record.id));
        } else {
          const existing = own(d.deployments, rollout.service);
          if (!existing) throw notFound(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${rollout.service} is not deployed`);
          deployment.update(existing, record.id);
          target = existing;
        }
        d.rollouts.nextId += 1;
        d.rollouts.records.push(record);
        return { rollout: structuredClone(record), deployment: structuredClone(target) };
      }),

    update: (id, change) =>
      this.write((d) => {
        const rollout = d.rollouts.records.find((r) => r.id === id);
        if (!rollout) throw notFound(ErrorCodes.HUB_ROLLOUT_NOT_FOUND, `rollout ${id} not found`);
        const deployment = own(d.deployments, rollout.service);
        if (!deployment) throw notFound(ErrorCodes.HUB_DEPLOYMENT_NOT_FOUND, `service ${rollout.service} is not deployed`);
        change(rollout, deployment);
        return { rollout: structuredClone(rollout), deployment: structuredClone(deployment) };
      }),

    get: async (id) => {
      const found = this.data.rollouts.records.find((r) => r.id === id);
      return found && structuredClone(found);
    },

    list: async (filter) =>
      this.data.rollouts.records
        .filter((r) => (filter.service === undefined || r.service === filter.service) && (filter.active === undefined || ACTIVE_ROLLOUT_PHASES.includes(r.phase) === filter.active))
        .reverse()
        .map((r) => structuredClone(r)),
  };

  readonly desired: DesiredRepository = {
    epoch: () => this.data.epoch,
    renewEpoch: async () => {
      const epoch = newEpoch();
      await this.write((d) => {
        d.epoch = epoch;
      });
      return epoch;
    },
    all: async () => new Map(Object.entries(structuredClone(this.data.desired))),
    save: (changes) =>
      this.write((d) => {
        for (const [id, record] of changes) d.desired[id] = structuredClone(record);
      }),
  };

  readonly retraining: RetrainingRepository = {
    addJob: (job) =>
      this.write((d) => {
        const jobs = retrainingOf(d).jobs;
        if (own(jobs, job.name)) throw conflict(`retraining job ${job.name} exists`);
        jobs[job.name] = structuredClone(job);
        return structuredClone(job);
      }),

    getJob: async (name) => {
      const job = own(storedRetraining(this.data)?.jobs ?? {}, name);
      return job && structuredClone(job);
    },

    listJobs: async () => {
      const jobs = storedRetraining(this.data)?.jobs ?? {};
      return Object.keys(jobs)
        .sort()
        .map((n) => structuredClone(jobs[n]!));
    },

    addRun: (run, labelsSince) =>
      this.write((d) => {
        const data = retrainingOf(d);
        const job = own(data.jobs, run.job);
        if (!job) throw notFound(ErrorCodes.HUB_RETRAINING_JOB_NOT_FOUND, `retraining job ${run.job} not found`);
        // In the write: two triggers at once cannot both find the job idle.
        if (data.runs.records.some((r) => r.job === run.job && ACTIVE_RUN_STATUSES.includes(r.status))) throw conflict(`retraining job ${run.job} has a run queued or running already`);
        job.labelsSince = labelsSince;
        const record: RetrainingRunRecord = { ...structuredClone(run), id: data.runs.nextId };
        data.runs.nextId += 1;
        data.runs.records.push(record);
        return structuredClone(record);
      }),

    updateRun: (id, change) =>
      this.write((d) => {
        const run = retrainingOf(d).runs.records.find((r) => r.id === id);
        if (!run) throw notFound(ErrorCodes.HUB_RETRAINING_RUN_NOT_FOUND, `retraining run ${id} not found`);
        change(run);
        return structuredClone(run);
      }),

    getRun: async (id) => {
      const run = storedRetraining(this.data)?.runs.records.find((r) => r.id === id);
      return run && structuredClone(run);
    },

    listRuns: async ({ job, active }) =>
      (storedRetraining(this.data)?.runs.records ?? [])
        .filter((r) => (job === undefined || r.job === job) && (active === undefined || ACTIVE_RUN_STATUSES.includes(r.status) === active))
        .reverse()
        .map((r) => structuredClone(r)),

    addLineageMetrics: (model, metrics) =>
      this.write((d) => {
        const record = own(d.models, model.name)?.versions.find((v) => v.version === model.version);
        if (!record) throw notFound(ErrorCodes.HUB_MODEL_NOT_FOUND, `model ${model.name}:${model.version} not found`);
        Object.assign(record.lineage.metrics, metrics);
      }),
  };

  readonly trainers: TrainerRepository = {
    addVersion: (draft: NewTrainerVersion) =>
      this.write((d) => {
        const entry = ownOrSet(trainersOf(d), draft.name, () => ({ nextVersion: 1, versions: [] as TrainerVersionRecord[] }));
        const record: TrainerVersionRecord = { ...structuredClone(draft), version: entry.nextVersion };
        entry.nextVersion += 1;
        entry.versions.push(record);
        return structuredClone(record);
      }),

    list: async ({ name }) => {
      const all = storedTrainers(this.data);
      const names = name ? [name] : Object.keys(all).sort();
      return names.flatMap((n) => own(all, n)?.versions ?? []).map((v) => structuredClone(v));
    },

    resolve: async (name, selector) => {
      const entry = own(storedTrainers(this.data), name);
      if (!entry || entry.versions.length === 0) throw notFound(ErrorCodes.HUB_TRAINER_NOT_FOUND, `trainer ${name} not found`);
      if ('alias' in selector) throw notFound(ErrorCodes.HUB_TRAINER_NOT_FOUND, `trainers have no aliases (asked for ${name}@${selector.alias})`);
      const record = pick(entry.versions, selector);
      if (!record) throw notFound(ErrorCodes.HUB_TRAINER_NOT_FOUND, `trainer ${describeSelector(name, selector)} not found`);
      return structuredClone(record);
    },

    updateImage: (name, version, change) =>
      this.write((d) => {
        const record = own(trainersOf(d), name)?.versions.find((v) => v.version === version);
        if (!record) throw notFound(ErrorCodes.HUB_TRAINER_NOT_FOUND, `trainer ${name}:${version} not found`);
        change(record.image);
        return structuredClone(record);
      }),
  };

  readonly datasets: DatasetRepository = {
    addVersion: (draft) =>
      this.write((d) => {
        const all = ((d as HubData & { datasets?: DatasetData }).datasets ??= {});
        const entry = ownOrSet(all, draft.name, () => ({ nextVersion: 1, versions: [] as DatasetVersionRecord[] }));
        const record: DatasetVersionRecord = { ...structuredClone(draft), version: entry.nextVersion };
        entry.nextVersion += 1;
        entry.versions.push(record);
        return structuredClone(record);
      }),

    list: async ({ name }) => {
      const all = storedDatasets(this.data);
      const names = name !== undefined ? [name] : Object.keys(all).sort();
      return names.flatMap((n) => own(all, n)?.versions ?? []).map((v) => structuredClone(v));
    },

    resolve: async (name, selector) => {
      const versions = own(storedDatasets(this.data), name)?.versions ?? [];
      const record = 'alias' in selector ? undefined : pick(versions, selector);
      if (!record) throw new EdgemlError(ErrorCodes.HUB_DATASET_NOT_FOUND, `dataset ${describeSelector(name, selector)} not found`, { httpStatus: 404 });
      return structuredClone(record);
    },
  };

  readonly modelUpdates: ModelUpdateRepository = {
    add: (draft) =>
      this.write((d) => {
        const part = modelUpdatesOf(d);
        const record: ModelUpdateRecord = { ...structuredClone(draft), id: part.nextId };
        part.nextId += 1;
        part.records.push(record);
        return structuredClone(record);
      }),

    update: (id, change) =>
      this.write((d) => {
        const record = modelUpdatesOf(d).records.find((r) => r.id === id);
        if (!record) throw new EdgemlError(ErrorCodes.HUB_MODEL_UPDATE_NOT_FOUND, `model update ${id} not found`, { httpStatus: 404 });
        change(record);
        return structuredClone(record);
      }),

    get: async (id) => {
      const found = storedModelUpdates(this.data).records.find((r) => r.id === id);
      return found && structuredClone(found);
    },

    list: async () => structuredClone(storedModelUpdates(this.data).records),
  };

  async referencedBlobs(): Promise<Set<string>> {
    const refs = new Set<string>();
    for (const entry of Object.values(this.data.models)) for (const v of entry.versions) refs.add(v.digest);
    for (const entry of Object.values(this.data.manifests)) {
      for (const m of entry.versions) {
        refs.add(m.score.digest);
        if (m.deps) refs.add(m.deps.digest);
      }
    }
    for (const entry of Object.values(storedTrainers(this.data))) {
      for (const t of entry.versions) {
        refs.add(t.train.digest);
        if (t.deps) refs.add(t.deps.digest);
      }
    }
    for (const entry of Object.values(storedDatasets(this.data))) for (const v of entry.versions) refs.add(v.digest);
    return refs;
  }
}
