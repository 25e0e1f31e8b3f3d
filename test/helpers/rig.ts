/**
 * Where the rig's real infrastructure lives (written by scripts/rig/setup.sh).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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
