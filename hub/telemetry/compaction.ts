/**
 * Compaction: a closed day's JSONL files are gzipped in place (telemetry compresses about tenfold),
 * and reads see the same records before and after. A day is never closed for good: a device that
 * was offline for a week sends its batches late, and they land in their own day's live file again.
 *
 * Names in a day directory, for one base name B (a device id, or MODEL@VERSION):
 *   B.jsonl          the live file the archive appends to
 *   B~K.jsonl        generation K, claimed by compaction (renamed from B.jsonl), not yet gzipped
 *   B~K.jsonl.gz     generation K, gzipped
 * Claiming by rename first makes a crash at any step harmless: a generation is read from its .gz
 * once that exists (written aside, fsynced, renamed), else from its .jsonl, and never from both, so
 * no record is lost or read twice. Generations keep their order (K ascending, then the live file).
 * `~` is not allowed in names (layout.ts), so no device or model can look like a generation.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { fsyncDir } from '../../shared/durable-file.js';

const LIVE = /^([^~]+)\.jsonl$/;
const GENERATION = /^([^~]+)~([1-9][0-9]{0,8})\.jsonl(\.gz)?$/;

interface Generation {
  k: number;
  plain: boolean;
  gz: boolean;
}

interface Family {
  live: boolean;
  generations: Map<number, Generation>;
}

/** The files of a directory listing grouped by base name; anything else (temp files, strays) is left out. */
function families(names: readonly string[]): Map<string, Family> {
  const out = new Map<string, Family>();
  const family = (base: string): Family => {
    let f = out.get(base);
    if (!f) out.set(base, (f = { live: false, generations: new Map() }));
    return f;
  };
  for (const name of names) {
    const live = LIVE.exec(name);
    if (live) {
      family(live[1]!).live = true;
      continue;
    }
    const gen = GENERATION.exec(name);
    if (!gen) continue;
    const k = Number(gen[2]);
    const gens = family(gen[1]!).generations;
    const g = gens.get(k) ?? { k, plain: false, gz: false };
    if (gen[3]) g.gz = true;
    else g.plain = true;
    gens.set(k, g);
  }
  return out;
}

function ordered(f: Family): Generation[] {
  return [...f.generations.values()].sort((a, b) => a.k - b.k);
}

const genName = (base: string, k: number, gz: boolean) => `${base}~${k}.jsonl${gz ? '.gz' : ''}`;

/**
 * The files to read, in order, among `names` (one directory's listing), for every base name or only
 * `base`: each generation once (its .gz when there is one), then the live file.
 */
export function readableFiles(names: readonly string[], base?: string): string[] {
  const out: string[] = [];
  const all = families(names);
  for (const b of [...all.keys()].sort()) {
    if (base !== undefined && b !== base) continue;
    const f = all.get(b)!;
    for (const g of ordered(f)) out.push(genName(b, g.k, g.gz));
    if (f.live) out.push(`${b}.jsonl`);
  }
  return out;
}

async function gzipDurably(source: string, target: string): Promise<void> {
  const temp = `${target}.tmp`;
  await pipeline(createReadStream(source), createGzip(), createWriteStream(temp, { mode: 0o600 }));
  const handle = await open(temp, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, target);
  // Durable before the plain copy goes: a filesystem that reorders metadata must not keep the unlink and lose the rename.
  await fsyncDir(dirname(target));
}

export interface CompactedDir {
  /** Live files gzipped. */
  compacted: number;
  /** Generations a crash had left half done, finished now. */
  finished: number;
}

/**
 * Gzips every live file of one day directory and finishes what a crash left. The caller makes sure
 * nothing appends to this directory meanwhile (the archive runs this between its writes) and
 * forgets what it knew about the live files' sizes.
 */
export async function compactDir(dir: string): Promise<CompactedDir> {
  const result: CompactedDir = { compacted: 0, finished: 0 };
  const names = await readdir(dir);
  // Temp files of a gzip a crash interrupted: the generation's .jsonl still holds the records.
  for (const name of names) if (name.endsWith('.gz.tmp')) await rm(join(dir, name), { force: true });
  for (const [base, f] of families(names)) {
    for (const g of ordered(f)) {
      if (!g.plain) continue;
      if (!g.gz) await gzipDurably(join(dir, genName(base, g.k, false)), join(dir, genName(base, g.k, true)));
      await rm(join(dir, genName(base, g.k, false)), { force: true });
      result.finished += 1;
    }
    if (!f.live) continue;
    const k = Math.max(0, ...f.generations.keys()) + 1;
    const claimed = join(dir, genName(base, k, false));
    await rename(join(dir, `${base}.jsonl`), claimed);
    await fsyncDir(dir);
    await gzipDurably(claimed, join(dir, genName(base, k, true)));
    await rm(claimed);
    result.compacted += 1;
  }
  await fsyncDir(dir);
  return result;
}
