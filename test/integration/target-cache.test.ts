/**
 * The agent's on-disk desired state (real filesystem).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { TargetCache } from '../../agent/reconcile/target-cache.js';
import type { DesiredState } from '../../shared/protocol.js';
import { tempDir } from '../helpers/edgeml-process.js';

const desired = (generation: number): DesiredState => ({
  v: 1,
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
