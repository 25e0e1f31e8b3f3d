/**
 * The first start makes an admin key, so a fresh hub can be managed at all. The file is written
 * before the record: a crash in between leaves no keys in the store, and the next start simply
 * makes a new one and overwrites the file. With any key in the store, nothing happens.
 */
import { join } from 'node:path';
import { writeFileDurably } from '../../shared/durable-file.js';
import type { ApiKeyRepository } from '../store/store.js';
import type { ApiKeyAuthority } from './api-keys.js';

export const ADMIN_KEY_FILE = 'admin.key';

export async function ensureAdminKey(
  dataDir: string,
  keys: ApiKeyRepository,
  authority: ApiKeyAuthority,
): Promise<{ created: false } | { created: true; key: string; file: string }> {
  if ((await keys.list()).length > 0) return { created: false };
  const file = join(dataDir, ADMIN_KEY_FILE);
  const { record, key } = authority.mint('admin (first start)', 'admin', null);
  await writeFileDurably(file, `${key}\n`, 0o600);
  await keys.add(record);
  return { created: true, key, file };
}
