/**
 * bin/edgeml's choice of entry (cli/entry.ts): the client bundle only while every dist/ file it was
 * made from is as old as the build recorded; `hub`, `agent` and `--version` always the compiled tree.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUNDLE_MANIFEST, entryFor, type BundleManifest, runsServer } from '../../cli/entry.js';

const BUILT = new Date('2026-01-02T03:04:05Z');

/** A checkout's dist/ with two inputs, the bundle and its manifest, all dated BUILT (`root` is dist/). */
async function fakeDist(t: ExecutionContext, checkout = true): Promise<{ root: string; distCli: URL; bundle: string; tree: string }> {
  const top = await mkdtemp(join(tmpdir(), 'edgeml-entry-'));
  t.teardown(() => rm(top, { recursive: true, force: true }));
  const root = join(top, 'dist');
  if (checkout) await writeFile(join(top, 'tsconfig.build.json'), '{}');
  await mkdir(join(root, 'cli'), { recursive: true });
  await mkdir(join(root, 'shared'));
  const manifest: BundleManifest = { bundle: 'edgeml-client.mjs', newestInputMs: BUILT.getTime(), inputs: ['main.js', '../shared/errors.js'] };
  for (const [file, text] of [['cli/main.js', ''], ['shared/errors.js', ''], ['cli/bin.js', ''], ['cli/edgeml-client.mjs', ''], [`cli/${BUNDLE_MANIFEST}`, JSON.stringify(manifest)]] as const) {
    await writeFile(join(root, file), text);
    await utimes(join(root, file), BUILT, BUILT);
  }
  const distCli = pathToFileURL(join(root, 'cli') + '/');
  return { root, distCli, bundle: new URL('edgeml-client.mjs', distCli).href, tree: new URL('bin.js', distCli).href };
}

test('a fresh bundle runs client commands, help and usage errors', async (t) => {
  const d = await fakeDist(t);
  for (const args of [['model', 'list'], ['--json', 'model', 'list'], ['--help'], [], ['nosuch'], ['--version', 'x']]) {
    t.is(entryFor(args, d.distCli).href, d.bundle, args.join(' '));
  }
});

test('hub, agent and --version run from the compiled tree', async (t) => {
  // bin/edgeml keeps V8's optimizing WebAssembly compiler for these servers only.
  t.true(runsServer(['--debug', 'hub', 'start']));
  t.true(runsServer(['agent', 'start']));
  t.false(runsServer(['model', 'list', '--hub', 'http://hub']));
  const d = await fakeDist(t);
  for (const args of [['hub', 'start'], ['--debug', 'hub', 'ca', '--json'], ['agent', 'start', '--hub', 'mqtt://x'], ['--version'], ['-V']]) {
    t.is(entryFor(args, d.distCli).href, d.tree, args.join(' '));
  }
});

test('a dist/ file newer than the bundle (tsc ran since) makes it stale', async (t) => {
  const d = await fakeDist(t);
  const later = new Date(BUILT.getTime() + 1000);
  await utimes(join(d.root, 'shared', 'errors.js'), later, later);
  t.is(entryFor(['model', 'list'], d.distCli).href, d.tree);
});

test('a missing input, bundle or manifest, or a bundle older than its inputs, falls back to the tree', async (t) => {
  const missing: [string, (root: string) => Promise<void>][] = [
    ['input', (root) => rm(join(root, 'cli', 'main.js'))],
    ['bundle', (root) => rm(join(root, 'cli', 'edgeml-client.mjs'))],
    ['manifest', (root) => rm(join(root, 'cli', BUNDLE_MANIFEST))],
    ['garbled manifest', (root) => writeFile(join(root, 'cli', BUNDLE_MANIFEST), '{')],
    ['old bundle', (root) => utimes(join(root, 'cli', 'edgeml-client.mjs'), new Date(0), new Date(0))],
  ];
  for (const [what, spoil] of missing) {
    const d = await fakeDist(t);
    t.is(entryFor(['model', 'list'], d.distCli).href, d.bundle, `${what}: fresh before`);
    await spoil(d.root);
    t.is(entryFor(['model', 'list'], d.distCli).href, d.tree, what);
  }
});

test('an installed package (no tsconfig beside dist/, files timed by the unpacking) uses its bundle', async (t) => {
  const d = await fakeDist(t, false);
  const later = new Date(BUILT.getTime() + 1000);
  await utimes(join(d.root, 'shared', 'errors.js'), later, later);
  t.is(entryFor(['model', 'list'], d.distCli).href, d.bundle);
  await rm(join(d.root, 'cli', 'edgeml-client.mjs'));
  t.is(entryFor(['model', 'list'], d.distCli).href, d.tree);
});
