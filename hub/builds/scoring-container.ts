/**
 * A scoring image run once on the hub's Docker: host networking on a loopback port the runtime
 * picks itself (read from its "listening" log line), labelled with the hub instance so the next
 * start of a crashed hub removes it, and waited on until `/health` answers 200. The smoke test and
 * the evaluation of a model both score through it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { docker, dockerOrFail, quick, removeContainer } from './docker-cli.js';
import { SMOKE_TEST_LABEL } from './leftovers.js';

export interface ScoringContainerRequest {
  /** `repository@sha256:…` */
  ref: string;
  platform: string;
  /** Names the container, so every step (and the cleanup) addresses it without parsing output. */
  containerName: string;
  /** The hub instance, as a label: the next start of this hub removes what a crash left running. */
  hubInstance: string;
  /** Until healthy. */
  timeoutMs: number;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
  /** What an abort through `signal` throws (a build's cancel, an evaluation's). */
  cancelled: () => Error;
  /** Docker's --memory (and --memory-swap: no swap beyond it), e.g. `1g`; absent: no limit. */
  memory?: string | undefined;
  /** Docker's --cpus; absent: no limit. */
  cpus?: number | undefined;
}

/** A healthy container; `remove` must be called whatever happens next. */
export interface ScoringContainer {
  /** `http://127.0.0.1:PORT` */
  base: string;
  /** POST /score with a JSON body; an Error when no answer came within `timeoutMs`. */
  score(body: unknown, timeoutMs: number): Promise<Response | Error>;
  /** Its last log lines, each cut to a bounded length. */
  output(): Promise<string[]>;
  remove(): Promise<void>;
}

export type ScoringContainerStart = { ok: true; container: ScoringContainer } | { ok: false; message: string; output: string[] };

const POLL_MS = 500;
const OUTPUT_LINES = 40;
const MAX_LINE_CHARS = 500;

export function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

async function containerOutput(name: string, signal?: AbortSignal): Promise<string[]> {
  const lines: string[] = [];
  await docker(['logs', '--tail', String(OUTPUT_LINES), name], (line) => lines.push(cut(line, MAX_LINE_CHARS)), quick(signal)).catch(() => 1);
  return lines;
}

async function containerState(name: string, signal?: AbortSignal): Promise<{ running: boolean; exitCode: number }> {
  const [line = ''] = await dockerOrFail(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', name], 'docker inspect', () => undefined, quick(signal));
  const [running, code] = line.split(' ');
  return { running: running === 'true', exitCode: Number(code) };
}

/** A fetch bounded by the caller's signal and its own deadline; an Error when it got no answer. */
async function request(url: string, signal: AbortSignal | undefined, ms: number, init: RequestInit = {}): Promise<Response | Error> {
  const bound = signal ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
  return fetch(url, { ...init, signal: bound }).catch((err: Error) => err);
}

/**
 * Runs the image and waits until it is healthy. A container that fails to start, exits, says it
 * failed or stays unhealthy is removed and answered `ok: false` with its output.
 */
export async function startScoringContainer(req: ScoringContainerRequest): Promise<ScoringContainerStart> {
  const { platform, log, signal, containerName: name } = req;
  const deadline = Date.now() + req.timeoutMs;
  const failed = async (message: string): Promise<ScoringContainerStart> => ({ ok: false, message, output: await containerOutput(name) });

  await removeContainer(name);
  let healthy = false;
  try {
    const runOutput: string[] = [];
    // Trust boundary: the scoring code (and, for an evaluation, the model a trainer wrote) comes from
    // users with the deploy scope, who may already run code on the hub's Docker through builds and
    // trainers. Host networking is how it is reached here (this Docker has no bridge network; the
    // runtime listens on 127.0.0.1), so it can reach the hub's loopback services like any build
    // step; memory and CPU limits keep one run from starving the hub.
    const limits = [...(req.memory ? ['--memory', req.memory, '--memory-swap', req.memory] : []), ...(req.cpus ? ['--cpus', String(req.cpus)] : [])];
    const code = await docker(
      ['run', '--detach', '--network', 'host', ...limits, '--platform', platform, '--name', name, '--label', `${SMOKE_TEST_LABEL}=${req.hubInstance}`, '-e', 'PORT=0', '-e', 'HOST=127.0.0.1', req.ref],
      (line) => {
        runOutput.push(cut(line, MAX_LINE_CHARS));
        log(`[${platform}] ${line}`);
      },
      signal,
    );
    if (signal?.aborted) throw req.cancelled();
    if (code !== 0) return { ok: false, message: `docker run failed (exit ${code})`, output: runOutput.slice(-OUTPUT_LINES) };

    let base: string | undefined;
    for (;;) {
      if (signal?.aborted) throw req.cancelled();
      if (Date.now() > deadline) return await failed(`not healthy within ${Math.round(req.timeoutMs / 1000)} s`);
      const state = await containerState(name, signal);
      if (!state.running) return await failed(`the container exited with code ${state.exitCode} before it was healthy`);
      if (!base) {
        const port = (await containerOutput(name, signal)).map((l) => /"msg":"listening".*"port":(\d+)/.exec(l)?.[1]).find(Boolean);
        if (port) base = `http://127.0.0.1:${port}`;
      }
      if (base) {
        const health = await request(`${base}/health`, signal, 5000);
        if (!(health instanceof Error)) {
          if (health.status === 200) break;
          const body = (await health.json().catch(() => undefined)) as { status?: string; error?: string } | undefined;
          if (body?.status === 'failed') return await failed(`/health says failed: ${body.error ?? 'no reason given'}`);
        }
      }
      await sleep(POLL_MS, undefined, { signal }).catch(() => undefined);
    }
    healthy = true;
    const url = base;
    return {
      ok: true,
      container: {
        base: url,
        score: (body, timeoutMs) =>
          request(`${url}/score`, signal, timeoutMs, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
        output: () => containerOutput(name),
        remove: () => removeContainer(name),
      },
    };
  } finally {
    // A healthy container is the caller's to remove; anything else is gone before this returns.
    if (!healthy) await removeContainer(name);
  }
}
