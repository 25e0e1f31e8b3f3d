/**
 * Hostile model archives uploaded to a real hub process (test/helpers/fuzz/hostile-tars.ts), then
 * seeded random damage to good ones: each hostile one is refused with a 4xx naming the problem and
 * stores nothing; one that is accepted must be safe (its listing stays inside the model, and the
 * real extractor puts nothing outside a sandbox); nothing is ever written outside DATA.
 */
import { lstat, mkdir, readdir, readlink } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import type { ModelVersion } from '../../shared/api/models.js';
import { extractArchive } from '../../shared/archive/index.js';
import { startHub, tempDir, type HubProcess } from '../helpers/edgeml-process.js';
import { hostileTars, randomTarish, type HostileTar } from '../helpers/fuzz/hostile-tars.js';
import { fuzzBudget, Random } from '../helpers/fuzz/random.js';
import { storedBlobs, storedState } from '../helpers/fuzz/stored-state.js';
import { api, blobFiles, type ErrorAnswer } from '../helpers/hub-api.js';
import { waitFor } from '../helpers/wait.js';

const MAX_ARCHIVE_FILES = 64;

/** Every path under `dir` that is, or links to, something outside `dir`. */
async function escapes(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(dir, rel))) {
      const path = join(dir, rel, name);
      const info = await lstat(path);
      if (info.isSymbolicLink()) {
        const target = await readlink(path);
        const resolved = resolve(join(dir, rel), target);
        if (isAbsolute(target) || !(resolved === dir || resolved.startsWith(`${dir}/`))) out.push(`${join(rel, name)} -> ${target}`);
      } else if (info.isDirectory()) {
        await walk(join(rel, name));
      } else if (!info.isFile()) {
        out.push(`${join(rel, name)} is neither file, directory nor symlink`);
      }
    }
  };
  await walk('');
  return out;
}

/** An accepted archive must be safe: a listing inside the model, and an extraction inside the sandbox. */
async function checkSafe(t: ExecutionContext, hub: HubProcess, label: string, version: ModelVersion, tar: Buffer): Promise<void> {
  for (const f of version.files) {
    t.false(isAbsolute(f.path) || f.path.split('/').includes('..') || f.path === '', `${label}: listed path ${JSON.stringify(f.path)}`);
  }
  const sandbox = await tempDir(t, 'edgeml-fuzz-extract-');
  const into = join(sandbox, 'model');
  const extracted = await extractArchive(Readable.from([tar]), into, { maxFiles: MAX_ARCHIVE_FILES, maxBytes: 10_000_000 }).then(
    () => true,
    (err: Error) => t.log(`${label}: accepted by the hub, refused by the extractor: ${err.message}`),
  );
  t.deepEqual(await readdir(sandbox), extracted ? ['model'] : [], `${label}: nothing beside the extraction`);
  if (extracted) t.deepEqual(await escapes(into), [], `${label}: extracted entries that reach outside`);
}

test('hostile archives are refused with a 4xx naming the problem and store nothing; accepted ones are safe; nothing escapes DATA', async (t) => {
  t.timeout(180_000);
  const budget = fuzzBudget(t, { iterations: 80, seconds: 15 });
  const rng = new Random(budget.seed);
  const root = await tempDir(t, 'edgeml-fuzz-archives-');
  const data = join(root, 'data');
  await mkdir(data);
  const hub = await startHub(t, ['--max-archive-files', String(MAX_ARCHIVE_FILES)], { data });
  const marker = `edgeml-fuzz-escape-${budget.seed}`;
  const known = await hostileTars(marker, { maxFiles: MAX_ARCHIVE_FILES });

  const upload = async (n: number, c: HostileTar) => {
    const name = `arch-${n}`;
    const before = { state: await storedState(data), blobs: await storedBlobs(data) };
    const res = await api<ModelVersion & ErrorAnswer>(hub, 'POST', `/api/v1/models/${name}/versions`, { key: hub.adminKey, body: c.tar, contentType: 'application/x-tar' });
    const what = `#${n} ${c.label} (${c.tar.length} bytes) -> ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`;
    t.true(res.status < 500, `seed ${budget.seed}: ${what}`);
    if (res.status === 201) {
      t.not(c.expect, 'refuse', `seed ${budget.seed}: accepted: ${what}`);
      await checkSafe(t, hub, what, res.body, c.tar);
      return;
    }
    t.not(c.expect, 'accept', `seed ${budget.seed}: refused a safe archive: ${what}`);
    t.true(res.status >= 400 && res.status < 500, what);
    t.is(typeof res.body?.error?.code, 'string', what);
    if (c.mentions) t.true(res.body.error.message.includes(c.mentions), `the message names ${c.mentions}: ${what}`);
    t.is(await storedState(data), before.state, `stored something: ${what}`);
    t.deepEqual(await storedBlobs(data), before.blobs, `stored a blob: ${what}`);
    t.is((await api(hub, 'GET', `/api/v1/models/${name}`, { key: hub.adminKey })).status, 404, `model listed: ${what}`);
  };

  let n = 0;
  for (const c of known) await upload(n++, c);
  while (!budget.spent(n - known.length)) await upload(n++, { label: 'random damage', tar: await randomTarish(rng, known), expect: 'either' });
  t.log(`${n} archives`);

  t.true(hub.running, hub.tail());
  await waitFor('no upload temp files left behind', async () => (await blobFiles(data)).tmp.length === 0, 10_000);
  t.deepEqual(await readdir(root), ['data'], 'nothing written beside DATA');
  t.false((await readdir(tmpdir())).includes(marker), `${marker} in ${tmpdir()}`);
});
