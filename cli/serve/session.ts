/**
 * Runs a serve target until Ctrl-C: starts the runtime, says where it serves once /health is ok,
 * restarts it on the same port when watched files change, and removes what it started.
 */
import { inputError } from '../args.js';
import { RuntimeProcess, whenAborted, type RuntimeCommand } from './runtime-process.js';
import { watchPaths } from './watch.js';

export const HOST = '127.0.0.1';

export interface ServeTarget {
  mode: 'image' | 'files';
  /** Lays out (again) what the runtime reads; throws the user's error (bad schema, missing file). */
  prepare(): Promise<void>;
  command(port: number): RuntimeCommand;
  /** After each run has stopped (the container is removed). */
  afterStop?(): Promise<void>;
  /** Paths whose changes restart the runtime. */
  watch: readonly string[];
  /** Removes what prepare() made. */
  dispose(): Promise<void>;
}

export interface ServeOutput {
  json: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw inputError(`--port ${JSON.stringify(text)}: expected 0 (any free port) to 65535`);
  return port;
}

async function launch(target: ServeTarget, port: number, out: ServeOutput, live: Set<RuntimeProcess>, signal: AbortSignal): Promise<{ run: RuntimeProcess; port: number; error?: Error }> {
  const run = new RuntimeProcess(target.command(port), (line) => out.stderr.write(`${line}\n`));
  live.add(run);
  try {
    const ready = await run.ready(HOST, signal);
    return { run, port: ready.port, ...(ready.health.ok ? {} : { error: run.notServing(ready.health.error) }) };
  } catch (err) {
    live.delete(run);
    await run.stop();
    await target.afterStop?.();
    throw err;
  }
}

export async function serve(target: ServeTarget, opts: { port: number; signal: AbortSignal; out: ServeOutput }): Promise<void> {
  const { out, signal } = opts;
  const live = new Set<RuntimeProcess>();
  const aborted = whenAborted(signal);
  let current: RuntimeProcess | undefined;
  let closeWatch: (() => void) | undefined;
  // One reload at a time; changes during a reload cause one more.
  let reloading: Promise<void> = Promise.resolve();
  const stopCurrent = async () => {
    if (!current) return;
    live.delete(current);
    await current.stop();
    current = undefined;
    await target.afterStop?.();
  };
  try {
    await Promise.race([target.prepare(), aborted]);
    const first = await launch(target, opts.port, out, live, signal);
    current = first.run;
    if (first.error) throw first.error;
    const port = first.port;
    const url = `http://${HOST}:${port}`;

    let pending = false;
    const reload = async () => {
      if (signal.aborted) return;
      try {
        await target.prepare();
      } catch (err) {
        out.stderr.write(`reload failed (still serving the previous version): ${(err as Error).message}\n`);
        return;
      }
      if (signal.aborted) return;
      await stopCurrent();
      try {
        const next = await launch(target, port, out, live, signal);
        current = next.run;
        if (next.error) throw next.error;
        if (out.json) out.stdout.write(`${JSON.stringify({ reloaded: true })}\n`);
        else out.stderr.write('reloaded\n');
      } catch (err) {
        if (signal.aborted) return;
        out.stderr.write(`reload failed: ${(err as Error).message}\n`);
        if (out.json) out.stdout.write(`${JSON.stringify({ reloaded: false, error: (err as Error).message })}\n`);
      }
    };
    // Watching starts before the ready line: a change made as soon as it is printed is seen.
    if (target.watch.length) {
      closeWatch = await watchPaths(target.watch, {
        onChange() {
          if (pending) return;
          pending = true;
          reloading = reloading.then(() => {
            pending = false;
            return reload();
          });
        },
        onError(err) {
          out.stderr.write(`watching for changes stopped (restart serve to reload again): ${err.message}\n`);
        },
      });
    }
    out.stdout.write(out.json ? `${JSON.stringify({ url, swagger: `${url}/swagger.json`, mode: target.mode })}\n` : `serving on ${url}\n`);
    await aborted.catch(() => undefined);
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    closeWatch?.();
    // A reload under way ends quickly once the signal is aborted; then nothing starts any more.
    await reloading;
    await Promise.all([...live].map((run) => run.stop()));
    await target.afterStop?.();
    await target.dispose();
  }
}
