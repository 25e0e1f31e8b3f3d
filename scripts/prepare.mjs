// `npm ci` / `npm install` in a checkout builds dist/. With `--omit=dev` TypeScript is absent: then
// say so instead of failing the install (a device should install the `npm pack` tarball, which
// ships dist/).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  console.warn('edgeml: TypeScript is not installed (dev dependencies omitted): not building dist/');
  process.exit(0);
}
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
