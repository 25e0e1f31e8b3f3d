/**
 * Where the rig's real infrastructure lives (written by scripts/rig/setup.sh).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { defaultBaseImage } from '../../hub/builds/base-images.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../../agent/runtime/image-size.js';

export interface Rig {
  registry: string;
  mosquitto: string;
  baseImage: string;
}

export function rig(): Rig {
  const dir = process.env.EDGEML_RIG_DIR ?? '/var/lib/edgeml-rig';
  let text: string;
  try {
    text = readFileSync(join(dir, 'rig.env'), 'utf8');
  } catch {
    throw new Error(`the test rig is not set up (no ${dir}/rig.env): run \`sudo bash scripts/rig/setup.sh\` first`);
  }
  const vars = Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const need = (k: string): string => {
    if (!vars[k]) throw new Error(`${dir}/rig.env lacks ${k}: rerun scripts/rig/setup.sh`);
    return vars[k];
  };
  return { registry: need('EDGEML_RIG_REGISTRY'), mosquitto: need('EDGEML_RIG_MOSQUITTO'), baseImage: need('EDGEML_RIG_BASE_IMAGE') };
}


export function runtimeBaseImage(runtime: 'node' | 'python'): string {
  return defaultBaseImage(rig().registry, runtime);
}

/**
 * Removes a pushed tag (the rig's registry has deletes enabled) so runs do not pile up. Single
 * manifests are asked for too: offered only index types, the registry answers a single-platform
 * image with a converted copy under another digest, whose DELETE is a 404.
 */
export async function deleteFromRegistry(registry: string, repo: string, tag: string): Promise<void> {
  const accept = [...INDEX_TYPES, ...MANIFEST_TYPES].join(', ');
  const head = await request(`http://${registry}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept } });
  await head.body.dump();
  const digest = head.headers['docker-content-digest'];
  if (head.statusCode !== 200 || typeof digest !== 'string') return;
  const del = await request(`http://${registry}/v2/${repo}/manifests/${digest}`, { method: 'DELETE' });
  await del.body.dump();
}
