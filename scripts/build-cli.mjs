// Bundles the client side of the CLI (every command but `hub …` and `agent …`) into one file,
// dist/cli/edgeml-client.mjs, from the compiled dist/ (run after tsc). Node then reads one file
// instead of ~460 modules (TypeBox, ajv, undici, commander, every command), which halves start-up.
//
// The process commands stay unbundled: bin/edgeml runs dist/cli/bin.js for `hub` and `agent`, so
// the bundle never loads a dist/ module (two copies of shared/errors.js would break
// `instanceof EdgemlError`): their modules are replaced here by a stub that refuses.
//
// dist/cli/edgeml-client.json lists the dist/ files the bundle was made from with the newest of
// their modification times: bin/edgeml uses the bundle only while none of them is newer (a
// developer's `tsc -p tsconfig.build.json` alone must never leave a stale bundle in use).
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}dist`;
const out = `${dist}/cli/edgeml-client.mjs`;
const manifest = `${dist}/cli/edgeml-client.json`;

// What only `hub start`, `hub ca` and `agent start` load (bin/edgeml sends those to dist/).
const PROCESS_ONLY = /\/dist\/(?:hub\/(?:main|config|pki\/ca)|agent\/(?:main|config)|shared\/logger)\.js$/;
const processOnlyStub = {
  name: 'process-commands-stay-in-dist',
  setup(build) {
    build.onLoad({ filter: PROCESS_ONLY }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`edgeml: ${relative(root, args.path)} is not in the client bundle; bin/edgeml runs hub and agent commands from dist/cli/bin.js`)});`,
      loader: 'js',
    }));
  },
};

const startedMs = Date.now();
const result = await esbuild.build({
  entryPoints: [`${dist}/cli/bin.js`],
  outfile: out,
  write: false,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Whitespace and syntax only: names stay, so --debug stack traces and error classes read as in dist/.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'none',
  // CommonJS packages (undici, ajv, commander) `require` Node's built-ins: an ESM bundle has no `require`.
  banner: { js: "import { createRequire as __edgemlCreateRequire } from 'node:module'; const require = __edgemlCreateRequire(import.meta.url);" },
  plugins: [processOnlyStub],
  logLevel: 'warning',
  metafile: true,
});

// The dist/ modules the bundle holds: a newer one means tsc ran since and the bundle is stale.
const inputs = Object.keys(result.metafile.inputs)
  .map((p) => `${root}${p}`)
  .filter((p) => p.startsWith(`${dist}/`) && !PROCESS_ONLY.test(p));
let newestInputMs = 0;
for (const p of inputs) newestInputMs = Math.max(newestInputMs, (await stat(p)).mtimeMs);
// No manifest while the bundle changes: bin/edgeml falls back to dist/ meanwhile.
await rm(manifest, { force: true });
if (newestInputMs > startedMs) {
  // tsc rewrote dist/ while esbuild read it (helpers build at once): the bundle may mix both.
  console.warn('edgeml: dist/ changed while the CLI bundle was built; not using it (run `npm run build` again)');
  process.exit(0);
}
for (const file of result.outputFiles) {
  await writeFile(`${file.path}.next`, file.contents);
  await rename(`${file.path}.next`, file.path);
}
const rel = (p) => relative(`${dist}/cli`, p);
await writeFile(manifest, `${JSON.stringify({ bundle: rel(out), newestInputMs, inputs: inputs.map(rel) })}\n`);
