/**
 * Device facts sent with the `online` status: what the hub needs to pick images and place work.
 */
import si from 'systeminformation';
import type { DeviceFacts } from '../../shared/protocol.js';
import type { DockerFacts } from '../runtime/container-runtime.js';

const ociArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm/v7', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The OCI platform of this process's machine, e.g. `linux/arm64`. */
export function nativePlatform(arch: string = process.arch): string {
  return `linux/${ociArch[arch] ?? arch}`;
}

export async function collectFacts(opts: {
  platform: string;
  agentVersion: string;
  docker: () => Promise<DockerFacts | null>;
}): Promise<DeviceFacts> {
  const [os, cpu, mem, docker] = await Promise.all([si.osInfo(), si.cpu(), si.mem(), opts.docker()]);
  return {
    hostname: os.hostname,
    platform: opts.platform,
    arch: os.arch,
    os: { distro: os.distro, release: os.release, kernel: os.kernel },
    cpus: cpu.cores,
    memoryBytes: mem.total,
    docker,
    agentVersion: opts.agentVersion,
  };
}
