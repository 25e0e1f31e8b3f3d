/**
 * The shape of the lowdb document and its schema version. A file written by a newer hub is
 * refused rather than misread; older versions are migrated here, step by step, when they exist.
 */
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { ManifestVersion } from '../../shared/api/manifests.js';
import type { ApiKeyRecord, ModelVersionRecord } from './store.js';

export const STORE_SCHEMA_VERSION = 1;

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
}

export function emptyHubData(): HubData {
  return { schemaVersion: STORE_SCHEMA_VERSION, apiKeys: [], models: {}, manifests: {} };
}

export function checkSchemaVersion(data: HubData, path: string): HubData {
  if (typeof data !== 'object' || data === null || typeof data.schemaVersion !== 'number') {
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} has no schemaVersion: it is not an edgeml hub store`);
  }
  const isRecord = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!Array.isArray(data.apiKeys) || !isRecord(data.models) || !isRecord(data.manifests)) {
    throw new EdgemlError(ErrorCodes.HUB_STORE_CORRUPT, `store file ${path} lacks apiKeys, models or manifests: it is damaged`);
  }
  if (data.schemaVersion > STORE_SCHEMA_VERSION) {
    throw new EdgemlError(
      ErrorCodes.HUB_STORE_VERSION,
      `store file ${path} has schema version ${data.schemaVersion}, but this hub understands up to ${STORE_SCHEMA_VERSION}: upgrade edgeml`,
    );
  }
  return data;
}
