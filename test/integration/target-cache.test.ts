/**
 * The agent's on-disk desired state (real filesystem).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { TargetCache } from '../../agent/reconcile/target-cache.js';
import type { DesiredState } from '../../shared/protocol.js';
import { tempDir } from '../helpers/edgeml-process.js';

const EPOCH_A = 'a'.repeat(32);
const EPOCH_B = 'b'.repeat(32);

const desired = (generation: number, epoch?: string): DesiredState => ({
  v: 1,
  ...(epoch === undefined ? {} : { epoch }),
  generation,
  services: [
    {
      name: 'svc',
      revision: generation,
      image: `registry.local:5000/svc@sha256:${String(generation).repeat(64).slice(0, 64)}`,
      limits: { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null },
      keyHash: 'a'.repeat(64),
      models: [],
    },
  ],
});

test('keeps the newest generation across restarts and ignores older ones', async (t) => {
  const dir = await tempDir(t);
  const cache = new TargetCache(dir);
  t.is(await cache.load(), null);
  t.true(await cache.offer(desired(2)));
  t.false(await cache.offer(desired(1)), 'an older generation is refused');
  t.false(await cache.offer(desired(2)), 'the same generation is not rewritten');
  t.is(cache.get()?.generation, 2);

  const restarted = new TargetCache(dir);
  t.is((await restarted.load())?.generation, 2);
  t.deepEqual(JSON.parse(await readFile(join(dir, 'desired.json'), 'utf8')), desired(2));
});

test('a corrupt cache file is treated as no target, not a crash', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'desired.json'), '{"v":1,"generation":');
  const cache = new TargetCache(dir);
  t.is(await cache.load(), null);
  t.true(await cache.offer(desired(1)));
});

test('concurrent offers (a session replay) end on the newest generation', async (t) => {
  const dir = await tempDir(t);
  for (let round = 0; round < 20; round++) {
    const cache = new TargetCache(dir);
    await cache.load();
    const base = (cache.get()?.generation ?? 0) + 1;
    const results = await Promise.all([cache.offer(desired(base + 1)), cache.offer(desired(base)), cache.offer(desired(base + 1))]);
    t.deepEqual(results, [true, false, false]);
    t.is(cache.get()?.generation, base + 1);
    t.is((await new TargetCache(dir).load())?.generation, base + 1);
  }
});

test('within an epoch only a higher generation is taken; another epoch is taken whatever its generation', async (t) => {
  const dir = await tempDir(t);
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const cache = new TargetCache(dir, logger);
  await cache.load();
  t.deepEqual(await cache.consider(desired(57, EPOCH_A)), { accepted: true, reason: 'newer' });
  t.deepEqual(await cache.consider(desired(56, EPOCH_A)), { accepted: false, reason: 'stale' });
  t.deepEqual(lines, [], 'nothing to say about the usual case');

  // The hub started over with another store: it counts from 1 again.
  t.deepEqual(await cache.consider(desired(1, EPOCH_B)), { accepted: true, reason: 'new-epoch' });
  t.like(cache.get(), { epoch: EPOCH_B, generation: 1 });
  t.like(lines[0], { msg: 'desired state from a new hub epoch (the hub restarted): taken whatever its generation', epoch: EPOCH_B, generation: 1, previousEpoch: EPOCH_A, previousGeneration: 57 });

  t.deepEqual(await cache.consider(desired(60, EPOCH_A)), { accepted: true, reason: 'new-epoch' }, 'any other epoch, not only a new one');
  t.deepEqual(await cache.consider(desired(59, EPOCH_A)), { accepted: false, reason: 'stale' }, 'and within it, generations are guarded again');
  t.deepEqual(await new TargetCache(dir).load(), desired(60, EPOCH_A), 'the taken state is on disk');
});

test('a state cached before epochs existed still loads, and the first state with an epoch replaces it', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'desired.json'), JSON.stringify(desired(9)));
  const cache = new TargetCache(dir);
  t.deepEqual(await cache.load(), desired(9));
  t.false(await cache.offer(desired(8)), 'no epoch on either side: the same epoch');
  t.true(await cache.offer(desired(2, EPOCH_A)), 'a hub with epochs, counting lower');
  t.false(await cache.offer(desired(1, EPOCH_A)));
  t.is(cache.get()?.generation, 2);
});
