import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { root: string; version: string } | undefined;

/**
 * The installed edgeml package: its directory and version, found by walking up from this module
 * (works from sources and from dist/).
 */
function edgemlPackage(): { root: string; version: string } {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'edgeml' && pkg.version) return (cached = { root: dir, version: pkg.version });
    } catch {
      // not here: keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) return (cached = { root: dirname(fileURLToPath(import.meta.url)), version: '0.0.0-unknown' });
    dir = parent;
  }
}

export function edgemlVersion(): string {
  return edgemlPackage().version;
}

/** The package's root directory, which ships `images/` (runtimes) next to `dist/`. */
export function edgemlPackageRoot(): string {
  return edgemlPackage().root;
}
