/**
 * The registry client commands (`edgeml model …`, `manifest …`, `apikey …`) run as real child
 * processes against a real hub: exit codes, stderr messages and the `--json` documents scripts rely on.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import type { ApiKeyCreated, ApiKeyInfo, ApiKeyList } from '../../shared/api/apikeys.js';
import type { ManifestVersion, ManifestVersionList } from '../../shared/api/manifests.js';
import type { AliasResult, ModelVersion, ModelVersionList } from '../../shared/api/models.js';
import { cleanEnv, cliFor, jsonOf, runCli, type CliResult } from '../helpers/cli.js';
import { startHub, tempDir } from '../helpers/edgeml-process.js';
import { api, blobFiles, sha256 } from '../helpers/hub-api.js';

const IRIS = fileURLToPath(new URL('../../examples/iris-onnx/', import.meta.url));
const IRIS_MODEL = join(IRIS, 'model');

async function sha256sum(file: string): Promise<string> {
  const { stdout } = await promisify(execFile)('sha256sum', [file]);
  return `sha256:${stdout.split(' ')[0]}`;
}

interface TreeEntry {
  type: 'file' | 'directory' | 'symlink';
  mode?: number;
  bytes?: string;
  target?: string;
}

/** Every entry under `dir` by relative path: file modes and contents, link targets (not followed). */
async function treeOf(dir: string, withModes: boolean): Promise<Record<string, TreeEntry>> {
  const tree: Record<string, TreeEntry> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const info = await lstat(join(dir, path));
      if (info.isSymbolicLink()) {
        tree[path] = { type: 'symlink', target: await readlink(join(dir, path)) };
      } else if (info.isDirectory()) {
        tree[path] = { type: 'directory' };
        await walk(path);
      } else {
        tree[path] = { type: 'file', bytes: sha256(await readFile(join(dir, path))), ...(withModes ? { mode: info.mode & 0o777 } : {}) };
      }
    }
  };
  await walk('');
  return tree;
}

test('model register --json: digest is sha256sum, versions increment, metadata shows up, list filters by tag', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const dir = await tempDir(t);
  const file = join(dir, 'weights.bin');
  const bytes = randomBytes(50_000);
  await writeFile(file, bytes);

  const one = jsonOf<ModelVersion>(t, await cli('model', 'register', 'clf', file, '--json'));
  t.like(one, { name: 'clf', version: 1, kind: 'file', size: bytes.length });
  t.is(one.digest, await sha256sum(file));

  const two = jsonOf<ModelVersion>(
    t,
    await cli('model', 'register', 'clf', file, '--tag', 'k=v', '--metric', 'accuracy=0.9', '--run-id', 'r1', '--dataset', 'd@1', '--description', 'second try', '--json'),
  );
  t.like(two, { name: 'clf', version: 2, digest: one.digest, size: bytes.length });

  const shown = jsonOf<ModelVersion>(t, await cli('model', 'show', 'clf:2', '--json'));
  t.like(shown, { name: 'clf', version: 2, description: 'second try', tags: { k: 'v' } });
  t.deepEqual(shown.lineage, { runId: 'r1', dataset: 'd@1', metrics: { accuracy: 0.9 } });
  const first = jsonOf<ModelVersion>(t, await cli('model', 'show', 'clf:1', '--json'));
  t.deepEqual(first.tags, {});
  t.deepEqual(first.lineage, { runId: null, dataset: null, metrics: {} });

  const all = jsonOf<ModelVersionList>(t, await cli('model', 'list', '--json'));
  t.deepEqual(all.versions.map((v) => v.version).sort(), [1, 2]);
  const tagged = jsonOf<ModelVersionList>(t, await cli('model', 'list', '--tag', 'k=v', '--json'));
  t.deepEqual(tagged.versions.map((v) => `${v.name}:${v.version}`), ['clf:2']);
  const none = jsonOf<ModelVersionList>(t, await cli('model', 'list', '--tag', 'k=other', '--json'));
  t.deepEqual(none.versions, []);
});

test('directory models: download reproduces the tree (modes, nesting, symlinks); packing is deterministic', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const work = await tempDir(t);

  const iris = jsonOf<ModelVersion>(t, await cli('model', 'register', 'iris', IRIS_MODEL, '--json'));
  t.like(iris, { name: 'iris', version: 1, kind: 'directory' });
  const irisOut = join(work, 'iris-out');
  const got = jsonOf<{ path: string; digest: string }>(t, await cli('model', 'download', 'iris:1', '--out', irisOut, '--json'));
  t.is(got.path, irisOut);
  t.is(got.digest, iris.digest);
  t.deepEqual(await treeOf(irisOut, false), await treeOf(IRIS_MODEL, false));

  const tree = join(work, 'tree');
  await mkdir(join(tree, 'data', 'nested'), { recursive: true });
  await writeFile(join(tree, 'run.sh'), '#!/bin/sh\necho scoring\n');
  await chmod(join(tree, 'run.sh'), 0o755);
  await writeFile(join(tree, 'data', 'nested', 'weights.txt'), 'w'.repeat(3000));
  await writeFile(join(tree, 'plain.txt'), 'plain');
  await chmod(join(tree, 'plain.txt'), 0o644);
  await symlink('data/nested/weights.txt', join(tree, 'weights'));

  const one = jsonOf<ModelVersion>(t, await cli('model', 'register', 'tree', tree, '--json'));
  t.like(one, { version: 1, kind: 'directory' });
  const two = jsonOf<ModelVersion>(t, await cli('model', 'register', 'tree', tree, '--json'));
  t.is(two.version, 2);
  t.is(two.digest, one.digest, 'the same directory packs to the same bytes');

  const out = join(work, 'tree-out');
  t.is((await cli('model', 'download', 'tree:1', '--out', out)).code, 0);
  const downloaded = await treeOf(out, true);
  t.deepEqual(downloaded, await treeOf(tree, true));
  t.is((await stat(join(out, 'run.sh'))).mode & 0o777, 0o755);
  t.is((await stat(join(out, 'plain.txt'))).mode & 0o777, 0o644);
  t.is(await readlink(join(out, 'weights')), 'data/nested/weights.txt');
  t.is(await readFile(join(out, 'weights'), 'utf8'), 'w'.repeat(3000), 'the link resolves inside the download');
  t.deepEqual((await readdir(work)).sort(), ['iris-out', 'tree', 'tree-out'], 'no partial files left next to the targets');
});

test('model download of a file gives identical bytes and never overwrites an existing file', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const work = await tempDir(t);
  const src = join(work, 'model.onnx');
  const bytes = randomBytes(120_000);
  await writeFile(src, bytes);
  const v = jsonOf<ModelVersion>(t, await cli('model', 'register', 'det', src, '--json'));
  t.is(v.framework, 'onnx');

  const outDir = join(work, 'out');
  await mkdir(outDir);
  const target = join(outDir, 'copy.onnx');
  const first = await cli('model', 'download', 'det:1', '--out', target);
  t.is(first.code, 0, first.stderr);
  t.true((await readFile(target)).equals(bytes));

  await writeFile(target, 'precious local edits');
  const again = await cli('model', 'download', 'det:1', '--out', target);
  t.not(again.code, 0);
  t.not(again.code, null);
  t.regex(again.stderr, /already exists/);
  t.true(again.stderr.includes(target));
  t.is(await readFile(target, 'utf8'), 'precious local edits');
  t.deepEqual(await readdir(outDir), ['copy.onnx'], 'no partial file left behind');
});

test('aliases: show NAME@ALIAS follows the alias, an aliased version cannot be deleted until unaliased', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const work = await tempDir(t);
  const file = join(work, 'm.bin');
  await writeFile(file, 'version one');
  jsonOf<ModelVersion>(t, await cli('model', 'register', 'ranker', file, '--json'));
  await writeFile(file, 'version two');
  jsonOf<ModelVersion>(t, await cli('model', 'register', 'ranker', file, '--json'));

  const set = jsonOf<AliasResult>(t, await cli('model', 'alias', 'ranker', 'production', '1', '--json'));
  t.deepEqual(set, { name: 'ranker', alias: 'production', version: 1, previous: null });
  t.is(jsonOf<ModelVersion>(t, await cli('model', 'show', 'ranker@production', '--json')).version, 1);

  const moved = jsonOf<AliasResult>(t, await cli('model', 'alias', 'ranker', 'production', '2', '--json'));
  t.like(moved, { version: 2, previous: 1 });
  const current = jsonOf<ModelVersion>(t, await cli('model', 'show', 'ranker@production', '--json'));
  t.is(current.version, 2);
  t.deepEqual(current.aliases, ['production']);

  const refused = await cli('model', 'delete', 'ranker:2');
  t.is(refused.code, 1);
  t.regex(refused.stderr, /production/);
  t.regex(refused.stderr, /HUB_E_CONFLICT/);
  t.is(jsonOf<ModelVersion>(t, await cli('model', 'show', 'ranker:2', '--json')).version, 2, 'still there');

  t.is((await cli('model', 'unalias', 'ranker', 'production')).code, 0);
  const gone = await cli('model', 'show', 'ranker@production');
  t.is(gone.code, 1);
  t.regex(gone.stderr, /HUB_E_\w*NOT_FOUND/);

  const deleted = await cli('model', 'delete', 'ranker:2', '--json');
  t.deepEqual(jsonOf(t, deleted), { name: 'ranker', version: 2, deleted: true });
  const after = await cli('model', 'show', 'ranker:2');
  t.is(after.code, 1);
  t.regex(after.stderr, /HUB_E_\w*NOT_FOUND/);
  t.deepEqual(jsonOf<ModelVersionList>(t, await cli('model', 'list', '--json')).versions.map((v) => v.version), [1]);
});

test('manifest create pins models by digest; bad schema and missing files are refused', async (t) => {
  const hub = await startHub(t);
  const cli = cliFor(hub);
  const work = await tempDir(t);
  const iris = jsonOf<ModelVersion>(t, await cli('model', 'register', 'iris', IRIS_MODEL, '--json'));
  const score = join(IRIS, 'score.js');
  const schema = join(IRIS, 'schema.json');
  const deps = join(IRIS, 'package.json');
  const common = ['--model', 'iris:1', '--runtime', 'node', '--deps', deps, '--env', 'LOG_LEVEL=debug'];

  const m = jsonOf<ManifestVersion>(t, await cli('manifest', 'create', 'iris-scorer', ...common, '--score', score, '--schema', schema, '--json'));
  t.like(m, { name: 'iris-scorer', version: 1, runtime: 'node', env: { LOG_LEVEL: 'debug' } });
  t.deepEqual(m.models, [{ name: 'iris', version: 1, digest: iris.digest }]);
  t.like(m.score, { filename: 'score.js', digest: await sha256sum(score) });
  t.like(m.deps, { filename: 'package.json', digest: await sha256sum(deps) });
  t.deepEqual(m.schema.sample, { features: [[5.1, 3.5, 1.4, 0.2]] });

  const badSchema = join(work, 'schema.json');
  const doc = JSON.parse(await readFile(schema, 'utf8')) as { sample: unknown };
  doc.sample = { features: [[5.1, 3.5]] };
  await writeFile(badSchema, JSON.stringify(doc));
  const mismatch = await cli('manifest', 'create', 'iris-scorer', ...common, '--score', score, '--schema', badSchema);
  t.is(mismatch.code, 1, mismatch.stderr);
  t.regex(mismatch.stderr, /schema\.sample/);

  const missing = join(work, 'nope.js');
  const noScore = await cli('manifest', 'create', 'iris-scorer', ...common, '--score', missing, '--schema', schema);
  t.is(noScore.code, 2, noScore.stderr);
  t.true(noScore.stderr.includes(missing), noScore.stderr);

  const shown = jsonOf<ManifestVersion>(t, await cli('manifest', 'show', 'iris-scorer', '--json'));
  t.like(shown, { name: 'iris-scorer', version: 1, digest: m.digest });
  const list = jsonOf<ManifestVersionList>(t, await cli('manifest', 'list', '--json'));
  t.deepEqual(list.versions.map((v) => `${v.name}:${v.version}`), ['iris-scorer:1'], 'the refused manifests were not stored');
});

test('apikey create/list/revoke: scopes are enforced, keys never listed, revoked keys stop working', async (t) => {
  const hub = await startHub(t);
  const admin = cliFor(hub);
  const work = await tempDir(t);
  const file = join(work, 'm.bin');
  await writeFile(file, 'model');

  const created = jsonOf<ApiKeyCreated>(t, await admin('apikey', 'create', '--scope', 'read', '--name', 'ro', '--json'));
  t.like(created, { name: 'ro', scope: 'read', revokedAt: null });
  t.is(typeof created.key, 'string');
  t.true(created.key.length >= 16);

  const ro = cliFor(hub, created.key);
  t.deepEqual(jsonOf<ModelVersionList>(t, await ro('model', 'list', '--json')).versions, [], 'a read key can read');
  const forbidden = await ro('model', 'register', 'm', file);
  t.is(forbidden.code, 1);
  t.regex(forbidden.stderr, /HUB_E_FORBIDDEN/);
  t.deepEqual(jsonOf<ModelVersionList>(t, await admin('model', 'list', '--json')).versions, [], 'nothing registered');

  const listed = await admin('apikey', 'list', '--json');
  t.false(listed.stdout.includes(created.key));
  const keys = jsonOf<ApiKeyList>(t, listed).keys;
  t.like(keys.find((k) => k.id === created.id), { name: 'ro', scope: 'read', revokedAt: null });
  const human = await admin('apikey', 'list');
  t.is(human.code, 0);
  t.false(human.stdout.includes(created.key));

  const revoked = jsonOf<ApiKeyInfo>(t, await admin('apikey', 'revoke', created.id, '--json'));
  t.is(revoked.id, created.id);
  t.not(revoked.revokedAt, null);
  const afterList = jsonOf<ApiKeyList>(t, await admin('apikey', 'list', '--json')).keys;
  t.not(afterList.find((k) => k.id === created.id)?.revokedAt ?? null, null);

  const rejected = await ro('model', 'list');
  t.is(rejected.code, 1);
  t.regex(rejected.stderr, /HUB_E_UNAUTHENTICATED/);

  const anonymous = await cliFor(hub, null)('model', 'list');
  t.is(anonymous.code, 1);
  t.regex(anonymous.stderr, /HUB_E_UNAUTHENTICATED/);
  t.regex(anonymous.stderr, /EDGEML_API_KEY/);
  t.regex(anonymous.stderr, /admin\.key/);
});

test('client config: --config and EDGEML_CONFIG files, flags over env, unreachable hub, bad flags', async (t) => {
  const hub = await startHub(t);
  const work = await tempDir(t);
  const file = join(work, 'm.bin');
  await writeFile(file, 'model');
  jsonOf<ModelVersion>(t, await cliFor(hub)('model', 'register', 'cfg', file, '--json'));
  const names = (r: CliResult) => jsonOf<ModelVersionList>(t, r).versions.map((v) => `${v.name}:${v.version}`);
  const base = cleanEnv();
  const dead = 'http://127.0.0.1:1';

  const config = join(work, 'client.json');
  await writeFile(config, JSON.stringify({ hub: hub.url, apiKey: hub.adminKey }));
  t.deepEqual(names(await runCli(['model', 'list', '--config', config, '--json'], base)), ['cfg:1']);
  t.deepEqual(names(await runCli(['model', 'list', '--json'], { ...base, EDGEML_CONFIG: config })), ['cfg:1']);

  // Flags beat variables, variables beat the file.
  // The key from a file: on the command line it would show in ps.
  const keyFile = join(work, 'admin.key');
  await writeFile(keyFile, hub.adminKey, { mode: 0o600 });
  const flagsWin = await runCli(['model', 'list', '--hub', hub.url, '--api-key-file', keyFile, '--json'], { ...base, EDGEML_HUB: dead, EDGEML_API_KEY: 'wrong' });
  t.deepEqual(names(flagsWin), ['cfg:1']);
  const badFile = join(work, 'bad.json');
  await writeFile(badFile, JSON.stringify({ hub: dead, apiKey: 'wrong' }));
  t.deepEqual(names(await runCli(['model', 'list', '--config', badFile, '--json'], { ...base, EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey })), ['cfg:1']);
  const wrongKey = await runCli(['model', 'list', '--api-key', 'wrong'], { ...base, EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey });
  t.is(wrongKey.code, 1, 'the --api-key flag is used even though the variable holds a good key');
  t.regex(wrongKey.stderr, /HUB_E_UNAUTHENTICATED/);

  const unreachable = await runCli(['model', 'list', '--hub', dead], { ...base, EDGEML_API_KEY: hub.adminKey });
  t.is(unreachable.code, 1);
  t.regex(unreachable.stderr, /CLI_E_HUB_UNREACHABLE/);
  t.true(unreachable.stderr.includes(dead));

  const badTag = await cliFor(hub)('model', 'register', 'cfg', file, '--tag', 'novalue');
  t.is(badTag.code, 2);
  t.regex(badTag.stderr, /--tag/);
  t.is(badTag.stdout, '');
  t.deepEqual(names(await cliFor(hub)('model', 'list', '--json')), ['cfg:1'], 'nothing was uploaded');
});

test('an upload over --max-upload is refused with the hub 413 and leaves nothing behind', async (t) => {
  const hub = await startHub(t, ['--max-upload', '64k']);
  const cli = cliFor(hub);
  const work = await tempDir(t);
  const big = join(work, 'big.bin');
  await writeFile(big, randomBytes(200 * 1024));

  const refused = await cli('model', 'register', 'big', big);
  t.is(refused.code, 1, refused.stderr);
  t.regex(refused.stderr, /HUB_E_PAYLOAD_TOO_LARGE/);
  t.regex(refused.stderr, /larger than the limit/);

  const show = await cli('model', 'show', 'big');
  t.is(show.code, 1);
  t.regex(show.stderr, /HUB_E_\w*NOT_FOUND/);
  t.is((await api(hub, 'GET', '/api/v1/models/big', { key: hub.adminKey })).status, 404);
  t.deepEqual(await blobFiles(hub.data), { blobs: [], tmp: [] });

  const small = join(work, 'small.bin');
  await writeFile(small, randomBytes(10 * 1024));
  t.like(jsonOf<ModelVersion>(t, await cli('model', 'register', 'big', small, '--json')), { name: 'big', version: 1 }, 'the limit, not the hub, refused the first');
});

test('model register refuses a directory without a single file before contacting the hub', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'model/deep'), { recursive: true });
  // Nothing listens on the hub address: an upload attempt would fail as unreachable instead.
  const r = await runCli(['model', 'register', 'hollow', dir, '--hub', 'http://127.0.0.1:1', '--api-key', 'unused'], cleanEnv());
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /no files.*\[EDGEML_E_ARCHIVE_INVALID\]/);
  t.notRegex(r.stderr, /UNREACHABLE/);
});

test('a directory the hub refuses midway (too many entries) fails cleanly: one error line, no crash', async (t) => {
  const hub = await startHub(t, ['--max-archive-files', '5']);
  const cli = cliFor(hub);
  const dir = await tempDir(t);
  for (let i = 0; i < 10; i++) await writeFile(join(dir, `f${i}.txt`), `file ${i}`);
  // Sorted last, so the hub refuses while the CLI is still streaming this file.
  await writeFile(join(dir, 'zz-weights.bin'), Buffer.alloc(32 * 1024 * 1024, 7));

  const r = await cli('model', 'register', 'many', dir);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /^edgeml: .*\[EDGEML_E_ARCHIVE_TOO_LARGE\]\n$/);
  t.deepEqual(await blobFiles(hub.data), { blobs: [], tmp: [] });
});
