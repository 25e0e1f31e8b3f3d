/**
 * The agent's on-disk desired state (real filesystem).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { TargetCache } from '../../agent/reconcile/target-cache.js';
import { tempDir } from '../helpers/edgeml-process.js';

const desired = (generation: number) => ({ v: 1 as const, generation, services: [{ name: 'svc', image: `img:${generation}` }] });

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
