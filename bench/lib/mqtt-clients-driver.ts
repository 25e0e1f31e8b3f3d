/**
 * Runs bench/lib/mqtt-clients.ts in its own process on the load cores and sends it commands
 * over IPC, one at a time, each with a deadline.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ConnectResult, PublishResult, WorkerCommand, WorkerReply } from './mqtt-clients.js';
import { spawnPinned, stopChild } from './processes.js';

const WORKER = fileURLToPath(new URL('./mqtt-clients.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

export class MqttClientsWorker {
  readonly #child: ChildProcess;
  #stderr = '';
  #busy: Promise<unknown> = Promise.resolve();

  /** `files`: open files the worker needs (one per connection, plus some). */
  constructor(cores: string, files: number) {
    this.#child = spawnPinned(cores, process.execPath, ['--import', 'tsx', WORKER], { files: files + 256, cwd: REPO, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.#child.stderr!.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-4000);
    });
  }

  get pid(): number {
    return this.#child.pid!;
  }

  connect(cmd: Omit<Extract<WorkerCommand, { op: 'connect' }>, 'op'>): Promise<ConnectResult> {
    return this.#send({ op: 'connect', ...cmd }, cmd.timeoutMs + 5_000) as Promise<ConnectResult>;
  }

  publish(cmd: Extract<WorkerCommand, { op: 'publish' }>): Promise<PublishResult> {
    return this.#send(cmd, cmd.warmupMs + cmd.durationMs + cmd.drainMs + 30_000) as Promise<PublishResult>;
  }

  consume(cmd: Omit<Extract<WorkerCommand, { op: 'consume' }>, 'op'>): Promise<void> {
    return this.#send({ op: 'consume', ...cmd }, cmd.timeoutMs + 5_000).then(() => undefined);
  }

  async consumed(): Promise<number> {
    return ((await this.#send({ op: 'count' }, 10_000)) as { consumed: number }).consumed;
  }

  /** Closes the connections (bounded), then ends the process. */
  async stop(): Promise<void> {
    if (this.#child.connected) await this.#send({ op: 'close' }, 15_000).catch(() => undefined);
    await stopChild(this.#child, 'SIGTERM', 5_000);
  }

  #send(cmd: WorkerCommand, timeoutMs: number): Promise<unknown> {
    const run = () =>
      new Promise<unknown>((resolve, reject) => {
        const child = this.#child;
        const done = (fn: () => void) => {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
          fn();
        };
        const onMessage = (reply: WorkerReply) => done(() => (reply.ok ? resolve(reply.result) : reject(new Error(`mqtt clients: ${cmd.op}: ${reply.error}`))));
        const onExit = (code: number | null, signal: string | null) =>
          done(() => reject(new Error(`mqtt clients: the worker exited (${code ?? signal}) during ${cmd.op}: ${this.#stderr.trim().split('\n').slice(-5).join(' | ')}`)));
        const timer = setTimeout(() => done(() => reject(new Error(`mqtt clients: ${cmd.op} not answered after ${timeoutMs} ms`))), timeoutMs);
        child.on('message', onMessage);
        child.once('exit', onExit);
        if (!child.connected) {
          onExit(child.exitCode, child.signalCode);
          return;
        }
        child.send(cmd);
      });
    const next = this.#busy.then(run, run);
    this.#busy = next.catch(() => undefined);
    return next;
  }
}
