// Builds the operator portal (portal/) into dist/ui: one script, one stylesheet and index.html, all
// served by the hub at /ui (nothing from a CDN). `--watch` rebuilds on change while developing.
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/ui`;
// The portal imports only types from shared/api: a value import would pull the schema library and
// its validator (hundreds of KB) into every page load. Refuse the build instead.
const SERVER_ONLY = /node_modules\/(?:@sinclair\/typebox|ajv|ajv-formats|fast-uri)\//;

const options = (outdir) => ({
  entryPoints: { app: `${root}portal/src/main.tsx` },
  outdir: `${outdir}/assets`,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  loader: { '.css': 'css' },
  logLevel: 'warning',
  metafile: true,
});

function checkInputs(metafile) {
  const offenders = Object.keys(metafile.inputs).filter((p) => SERVER_ONLY.test(p));
  if (offenders.length > 0) throw new Error(`portal: server-only modules in the browser bundle (a value import from shared/?): ${offenders.slice(0, 3).join(', ')}`);
}

if (process.argv.includes('--watch')) {
  await mkdir(out, { recursive: true });
  await copyFile(`${root}portal/index.html`, `${out}/index.html`);
  const onEnd = async (result) => {
    await copyFile(`${root}portal/index.html`, `${out}/index.html`);
    if (result.metafile) checkInputs(result.metafile);
  };
  const context = await esbuild.context({ ...options(out), plugins: [{ name: 'index-html', setup: (build) => build.onEnd(onEnd) }] });
  await context.watch();
  console.log('portal: watching portal/ and rebuilding dist/ui');
} else {
  // Built beside, then swapped in: a hub serving dist/ui never sees it half-written.
  const next = `${out}.next`;
  await rm(next, { recursive: true, force: true });
  await mkdir(next, { recursive: true });
  await copyFile(`${root}portal/index.html`, `${next}/index.html`);
  try {
    checkInputs((await esbuild.build(options(next))).metafile);
  } catch (e) {
    // Nothing half-built is left where `npm pack` would ship it.
    await rm(next, { recursive: true, force: true });
    throw e;
  }
  await rm(out, { recursive: true, force: true });
  await rename(next, out);
}
