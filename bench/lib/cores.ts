/**
 * Core pinning: the system under test and the load generator on different cores (`taskset`), so
 * the load generator does not steal the CPU it is measuring. On a 1-core machine both share it.
 */
import { availableParallelism } from 'node:os';

export interface BenchCores {
  /** `taskset -c` list for the system under test (hub, agent, gateway, nginx, Mosquitto). */
  sut: string;
  /** `taskset -c` list for load generators and simulated clients. */
  load: string;
}

export function benchCores(cpus = availableParallelism()): BenchCores {
  if (cpus < 2) return { sut: '0', load: '0' };
  const half = Math.floor(cpus / 2);
  const range = (from: number, to: number) => (from === to ? String(from) : `${from}-${to}`);
  return { sut: range(0, half - 1), load: range(half, cpus - 1) };
}

/** `command args` as `taskset -c CORES command args`. */
export function pinned(cores: string, command: string, args: readonly string[]): { command: string; args: string[] } {
  return { command: 'taskset', args: ['-c', cores, command, ...args] };
}
