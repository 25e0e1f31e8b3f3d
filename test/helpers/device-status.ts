/** The `online` status a device publishes, for tests that play a device over MQTT without an agent. */
import type { StatusMessage } from '../../shared/protocol.js';

export function onlineStatus(hostname: string, opts: { gateway?: string; since?: Date } = {}): StatusMessage {
  return {
    v: 1,
    state: 'online',
    since: (opts.since ?? new Date()).toISOString(),
    ...(opts.gateway === undefined ? {} : { gateway: opts.gateway }),
    facts: {
      hostname,
      platform: 'linux/amd64',
      arch: 'x64',
      os: { distro: 'Debian', release: '12', kernel: '6.1.0' },
      cpus: 2,
      memoryBytes: 1024 ** 3,
      docker: null,
      agentVersion: '0.1.0',
    },
  };
}
