/** The machine a result was measured on, kept with every result: ratios travel, absolute figures do not. */
import { cpus, release, totalmem } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export interface MachineDescription {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  docker: string | null;
}

export async function describeMachine(): Promise<MachineDescription> {
  const docker = await promisify(execFile)('docker', ['version', '--format', '{{.Server.Version}}'])
    .then((r) => r.stdout.trim())
    .catch(() => null);
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    docker,
  };
}

export function machineLine(m: MachineDescription): string {
  return `${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}${m.docker ? `, Docker ${m.docker}` : ''}`;
}
