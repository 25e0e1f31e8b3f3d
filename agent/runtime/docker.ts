/**
 * The agent's view of the container engine. Only this folder talks to Docker.
 */
import Docker from 'dockerode';
import type { DeviceFacts } from '../../shared/protocol.js';

export type DockerFacts = NonNullable<DeviceFacts['docker']>;

export interface ContainerRuntime {
  /** Engine facts, or null when no engine answers (the agent still runs and reports that). */
  facts(): Promise<DockerFacts | null>;
}

// A wedged engine must not hold up the agent's `online` status.
const FACTS_TIMEOUT_MS = 3000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function dockerRuntime(docker: Docker = new Docker()): ContainerRuntime {
  return {
    facts: async () => {
      try {
        const v = await withTimeout(docker.version(), FACTS_TIMEOUT_MS);
        return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
      } catch {
        return null;
      }
    },
  };
}
