/**
 * One run of a scoring runtime (a host process, or `docker run` attached): its output goes to
 * `echo` (the user sees their code's logs), the last lines are kept for error messages, and
 * `ready()` resolves once it listens and /health has answered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

const KEPT_LINES = 20;
const HEALTH_POLL_MS = 100;

export interface RuntimeCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** What the messages call it: "the python runtime", "the container". */
  label: string;
}

/** Rejects with `signal.reason` once `signal` is aborted (handled: racing it is optional). */
export function whenAborted(signal: AbortSignal): Promise<never> {
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  aborted.catch(() => undefined);
  return aborted;
}

export type Health = { ok: true } | { ok: false; error: string };

export class RuntimeProcess {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private readonly exited: Promise<number | null>;
  /** Aborted once the process has exited: ends the waits of ready(). */
  private readonly gone = new AbortController();
  private port: number | undefined;
  private listening: Array<(port: number) => void> = [];

  constructor(
    private readonly spec: RuntimeCommand,
    echo: (line: string) => void,
  ) {
    this.child = spawn(spec.command, spec.args, { env: spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.keep(`${spec.command}: ${err.message}`);
        resolve(null);
      });
      this.child.once('close', (code) => resolve(code));
    });
    void this.exited.then(() => this.gone.abort());
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let buffer = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        buffer += d;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          this.keep(line);
          echo(line);
          this.notice(line);
        }
      });
    }
  }

  private keep(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEPT_LINES) this.lines.shift();
  }

  /** The runtime's `listening` log line carries the port it bound (PORT=0 picks one). */
  private notice(line: string): void {
    if (this.port !== undefined || !line.startsWith('{')) return;
    try {
      const parsed = JSON.parse(line) as { msg?: unknown; port?: unknown };
      if (parsed.msg === 'listening' && typeof parsed.port === 'number') {
        this.port = parsed.port;
        for (const resolve of this.listening) resolve(parsed.port);
      }
    } catch {
      // the user's own output
    }
  }

  private failure(what: string): EdgemlError {
    const tail = this.lines.length ? `; its last output:\n  ${this.lines.join('\n  ')}` : '';
    return new EdgemlError(ErrorCodes.CLI_SERVE_FAILED, `${this.spec.label} ${what}${tail}`);
  }

  /**
   * Resolves with the port and the first settled /health answer; rejects if the process ends first
   * (CLI_E_SERVE_FAILED with its last output), or with `signal.reason` once `signal` is aborted.
   */
  async ready(host: string, signal: AbortSignal): Promise<{ port: number; health: Health }> {
    const exitedEarly = this.exited.then((code) => {
      throw this.failure(`exited${code === null ? '' : ` with code ${code}`} before it was ready`);
    });
    exitedEarly.catch(() => undefined);
    const port = await Promise.race([this.port ?? new Promise<number>((resolve) => this.listening.push(resolve)), exitedEarly, whenAborted(signal)]);
    const health = await this.pollHealth(host, port, AbortSignal.any([signal, this.gone.signal]));
    if (health) return { port, health };
    // Stopped: by the caller, or because the process exited (its code is in exitedEarly's error).
    signal.throwIfAborted();
    return exitedEarly;
  }

  /** Polls until /health settles, or `stop` is aborted (undefined): every wait ends on `stop`. */
  private async pollHealth(host: string, port: number, stop: AbortSignal): Promise<Health | undefined> {
    while (!stop.aborted) {
      const answer = await fetch(`http://${host}:${port}/health`, { signal: stop }).then(
        async (res) => ({ status: res.status, body: (await res.json().catch(() => ({}))) as { status?: string; error?: string } }),
        () => undefined,
      );
      if (answer?.status === 200) return { ok: true };
      if (answer?.body.status === 'failed') return { ok: false, error: answer.body.error ?? 'failed' };
      await sleep(HEALTH_POLL_MS, undefined, { signal: stop }).catch(() => undefined);
    }
    return undefined;
  }

  /** The error for a runtime that listens but cannot serve (failed load or init()). */
  notServing(error: string): EdgemlError {
    return this.failure(`is not serving: ${error}`);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM (the runtime drains), SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
