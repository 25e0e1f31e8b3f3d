// Builds the operator portal (portal/) into dist/ui: one script, one stylesheet and index.html, all
// served by the hub at /ui (nothing from a CDN). `--watch` rebuilds on change while developing.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/ui`;
const options = {
  entryPoints: { app: `${root}portal/src/main.tsx` },
  outdir: `${out}/assets`,
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
};

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await copyFile(`${root}portal/index.html`, `${out}/index.html`);
if (process.argv.includes('--watch')) {
  const context = await esbuild.context(options);
  await context.watch();
  console.log('portal: watching portal/ and rebuilding dist/ui');
} else {
  await esbuild.build(options);
}
