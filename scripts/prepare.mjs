// `npm ci` / `npm install` in a checkout builds dist/ (the CLI, hub and agent, the portal in dist/ui and the CLI's client bundle). With `--omit=dev` TypeScript is absent: then
// say so instead of failing the install (a device should install the `npm pack` tarball, which
// ships dist/).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  console.warn('edgeml: TypeScript is not installed (dev dependencies omitted): not building dist/');
  process.exit(0);
}
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
// The portal (dist/ui) and the CLI's client bundle are built with esbuild, a dev dependency like TypeScript.
for (const script of ['./build-portal.mjs', './build-cli.mjs']) {
  const built = spawnSync(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}
