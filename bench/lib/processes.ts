/**
 * The benchmarks' child processes: spawned pinned to cores (`taskset`), with enough open files for
 * thousands of connections when asked (`prlimit`), waited for until they listen, and always ended
 * by their own pid. Also the free loopback port for programs that cannot listen on port 0 and say
 * which port they got (Mosquitto, nginx, a container on the host network).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { pinned } from './cores.js';

/** The hard limit on open files this process may raise a child's limit to without privileges. */
function hardFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  return hard === 'unlimited' ? 1 << 20 : Number(hard ?? 1024);
}

export interface PinnedOptions extends SpawnOptions {
  /**
   * Open files the child needs: root may raise the hard limit; anyone else gets the hard limit they
   * have (and a clear error later if it is short). Unset: the child inherits this process's limits.
   */
  files?: number;
}

/**
 * `command args` pinned to `cores` (`taskset -c`), with `files` open files allowed if given
 * (`prlimit`). taskset and prlimit exec the command, so the child's pid is the command's own.
 */
export function spawnPinned(cores: string, command: string, args: readonly string[], options: PinnedOptions = {}): ChildProcess {
  const { files, ...spawnOptions } = options;
  let p = { command, args: [...args] };
  if (files !== undefined) {
    const limit = process.getuid?.() === 0 ? Math.max(files, hardFileLimit()) : Math.min(files, hardFileLimit());
    p = { command: 'prlimit', args: [`--nofile=${limit}:${limit}`, command, ...args] };
  }
  const t = pinned(cores, p.command, p.args);
  return spawn(t.command, t.args, spawnOptions);
}

/** Ends a child: `signal`, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A port free on 127.0.0.1 right now, for a program that cannot listen on port 0 and say which it got. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * Resolves once 127.0.0.1:`port` accepts a connection (tried every 50 ms). Fails when `exited()`
 * says why the process that should listen has gone (a non-null reason), or after `timeoutMs`.
 */
export async function waitListening(what: string, port: number, timeoutMs: number, exited: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = exited();
    if (why !== null) throw new Error(`${what} exited (${why})`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Why `child` is gone ("1", "SIGKILL"), or null while it runs. */
export function exitReason(child: ChildProcess): string | null {
  return child.exitCode !== null || child.signalCode !== null ? String(child.exitCode ?? child.signalCode) : null;
}
