/**
 * What a hub killed mid-build leaves behind: docker and npm processes still building or pushing (they
 * run in their own process groups so a cancel can stop them whole), and smoke-test containers. The
 * next start of the same hub (same data directory) removes both before it builds anything.
 */
import { readdir, readFile } from 'node:fs/promises';
import { docker, quick } from './docker-cli.js';

/** Inherited by every process the hub starts, so they can be found after a crash (Linux /proc). */
export const BUILD_OWNER_ENV = 'EDGEML_BUILD_OWNER';
export const SMOKE_TEST_LABEL = 'io.edgeml.smoke-test.hub';

export function markBuildProcesses(instance: string): void {
  process.env[BUILD_OWNER_ENV] = instance;
}

async function ownedBy(pid: string, marker: string): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/environ`, 'latin1')).split('\0').includes(marker);
  } catch {
    // Gone, or not ours to read.
    return false;
  }
}

/** Kills processes an earlier run of this hub started; returns how many. */
export async function killLeftoverProcesses(instance: string): Promise<number> {
  const marker = `${BUILD_OWNER_ENV}=${instance}`;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return 0;
  }
  let killed = 0;
  for (const pid of entries) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    if (!(await ownedBy(pid, marker))) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed += 1;
    } catch {
      // already gone
    }
  }
  return killed;
}

/**
 * Removes the containers an earlier run of this hub instance left under `label` (smoke tests,
 * training runs); returns how many. Docker being absent is not an error here.
 */
export async function removeContainersLabelled(label: string, instance: string): Promise<number> {
  const ids: string[] = [];
  const listed = await docker(['ps', '--all', '--quiet', '--filter', `label=${label}=${instance}`], (line, stream) => {
    if (stream === 'stdout' && line.trim()) ids.push(line.trim());
  }, quick()).catch(() => 1);
  if (listed !== 0 || ids.length === 0) return 0;
  await docker(['rm', '--force', ...ids], () => undefined, quick()).catch(() => 1);
  return ids.length;
}
