import Docker from 'dockerode';
import { exec } from './exec.js';
import { saveArtefact } from './secret-ledger.js';

/** A client for the rig's real dockerd (default socket). */
export function dockerClient(): Docker {
  return new Docker();
}

/** What `docker inspect` shows of a container that a secret must not be in. */
export interface InspectedContainer {
  Id: string;
  Config: { Env: string[] | null; Cmd: string[] | null; Entrypoint: string[] | null; Labels: Record<string, string> | null };
  Args: string[];
  State: { StartedAt: string };
}

/**
 * `docker inspect` of the containers an agent made for `deviceId` (its io.edgeml.device label),
 * saved to the test artefacts for the secret-leak scan; one `docker ps` and one `docker inspect`.
 */
export async function inspectDeviceContainers(deviceId: string): Promise<InspectedContainer[]> {
  const ids = (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`])).stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = await exec('docker', ['inspect', ...ids]);
  saveArtefact(`docker-inspect-${deviceId}-${Date.now()}.json`, inspected.stdout);
  return JSON.parse(inspected.stdout) as InspectedContainer[];
}

/** Removes every container an agent made for `deviceId`, whatever state it is in. */
export async function removeDeviceContainers(deviceId: string): Promise<void> {
  const ids = (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.device=${deviceId}`])).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await exec('docker', ['rm', '-f', ...ids]);
}
