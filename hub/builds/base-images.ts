/**
 * The default runtime base images: what images/base/build.sh pushes to the registry, with the tags
 * from images/base/versions.env (the one place they are bumped).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../../shared/api/manifests.js';
import { edgemlPackageRoot } from '../../shared/version.js';

function baseTag(runtime: Runtime): string {
  const text = readFileSync(join(edgemlPackageRoot(), 'images', 'base', 'versions.env'), 'utf8');
  const m = new RegExp(`^${runtime.toUpperCase()}_VERSION=(\\S+)$`, 'm').exec(text);
  if (!m?.[1]) throw new Error(`images/base/versions.env has no ${runtime.toUpperCase()}_VERSION= line`);
  return m[1];
}

export function defaultBaseImage(registry: string, runtime: Runtime): string {
  return `${registry}/edgeml/runtime-${runtime}-base:${baseTag(runtime)}`;
}
