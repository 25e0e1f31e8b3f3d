/**
 * After the push, each platform's image is run once (arm64 under emulation on an x86 hub) with host
 * networking on a loopback port the runtime picks itself, and must answer the manifest's sample.
 * An image that cannot do that here would not do it on a device either.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SmokeCheck } from '../../shared/api/images.js';
import { buildCancelled, docker, dockerOrFail, quick } from './docker-cli.js';
import { SMOKE_TEST_LABEL } from './leftovers.js';

export interface SmokeTestRequest {
  /** `repository@sha256:…` */
  ref: string;
  platform: string;
  sample: unknown;
  /** Names the container, so every step (and the cleanup) addresses it without parsing output. */
  containerName: string;
  /** The hub instance, as a label: the next start of this hub removes what a crash left running. */
  hubInstance: string;
  timeoutMs: number;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
}

const POLL_MS = 500;
const OUTPUT_LINES = 40;
/** Per line and in total: the output is stored with the image record. */
const MAX_LINE_CHARS = 500;
const MAX_OUTPUT_CHARS = 8000;

function cut(text: string, max: number): string {
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

async function removeContainer(name: string): Promise<void> {
  await docker(['rm', '--force', name], () => undefined, quick()).catch(() => 1);
}

/** A fetch bounded by the build's signal and its own deadline; undefined when it got no answer. */
async function get(url: string, signal: AbortSignal | undefined, ms: number, init: RequestInit = {}): Promise<Response | Error> {
  const bound = signal ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
  return fetch(url, { ...init, signal: bound }).catch((err: Error) => err);
}

export async function smokeTest(req: SmokeTestRequest): Promise<SmokeCheck> {
  const { platform, log, signal, containerName: name } = req;
  const deadline = Date.now() + req.timeoutMs;
  let answer = '';
  const fail = async (message: string): Promise<SmokeCheck> => ({
    status: 'failed',
    message,
    output: cut([...(await containerOutput(name)), ...(answer ? [answer] : [])].join('\n'), MAX_OUTPUT_CHARS),
  });

  await removeContainer(name);
  try {
    const runOutput: string[] = [];
    const code = await docker(
      ['run', '--detach', '--network', 'host', '--platform', platform, '--name', name, '--label', `${SMOKE_TEST_LABEL}=${req.hubInstance}`, '-e', 'PORT=0', '-e', 'HOST=127.0.0.1', req.ref],
      (line) => {
        runOutput.push(cut(line, MAX_LINE_CHARS));
        log(`[${platform}] ${line}`);
      },
      signal,
    );
    if (code !== 0) return { status: 'failed', message: `docker run failed (exit ${code})`, output: runOutput.slice(-OUTPUT_LINES).join('\n') };

    let base: string | undefined;
    for (;;) {
      if (signal?.aborted) throw buildCancelled();
      if (Date.now() > deadline) return await fail(`not healthy within ${Math.round(req.timeoutMs / 1000)} s`);
      const state = await containerState(name, signal);
      if (!state.running) return await fail(`the container exited with code ${state.exitCode} before it was healthy`);
      if (!base) {
        const port = (await containerOutput(name, signal)).map((l) => /"msg":"listening".*"port":(\d+)/.exec(l)?.[1]).find(Boolean);
        if (port) base = `http://127.0.0.1:${port}`;
      }
      if (base) {
        const health = await get(`${base}/health`, signal, 5000);
        if (!(health instanceof Error)) {
          if (health.status === 200) break;
          const body = (await health.json().catch(() => undefined)) as { status?: string; error?: string } | undefined;
          if (body?.status === 'failed') return await fail(`/health says failed: ${body.error ?? 'no reason given'}`);
        }
      }
      await sleep(POLL_MS, undefined, { signal }).catch(() => undefined);
    }

    log(`[${platform}] healthy; scoring the sample`);
    const res = await get(`${base}/score`, signal, Math.max(5000, deadline - Date.now()), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req.sample),
    });
    if (signal?.aborted) throw buildCancelled();
    if (res instanceof Error) return await fail(`the sample got no answer: ${res.message}`);
    answer = `POST /score → ${res.status} ${cut(await res.text(), 2000)}`;
    log(`[${platform}] ${answer}`);
    if (res.status !== 200) return await fail(`the sample got HTTP ${res.status}`);
    return { status: 'passed', message: 'the sample scored with HTTP 200', output: cut([...(await containerOutput(name)), answer].join('\n'), MAX_OUTPUT_CHARS) };
  } finally {
    await removeContainer(name);
  }
}
