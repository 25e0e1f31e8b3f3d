/**
 * After the push, each platform's image is run once (arm64 under emulation on an x86 hub) with host
 * networking on a loopback port the runtime picks itself, and must answer the manifest's sample.
 * An image that cannot do that here would not do it on a device either.
 */
import type { SmokeCheck } from '../../shared/api/images.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { docker, dockerOrFail } from './docker-cli.js';

export interface SmokeTestRequest {
  /** `repository@sha256:…` */
  ref: string;
  platform: string;
  sample: unknown;
  /** A container name, so a hub restarted mid-test can find and remove a leftover. */
  containerName: string;
  timeoutMs: number;
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
}

const POLL_MS = 500;
const OUTPUT_LINES = 40;
const MAX_ANSWER_CHARS = 2000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

async function containerOutput(id: string): Promise<string[]> {
  const lines: string[] = [];
  await docker(['logs', '--tail', String(OUTPUT_LINES), id], (line) => lines.push(line));
  return lines;
}

async function containerState(id: string): Promise<{ running: boolean; exitCode: number }> {
  const [line = ''] = await dockerOrFail(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', id], 'docker inspect', () => undefined);
  const [running, code] = line.split(' ');
  return { running: running === 'true', exitCode: Number(code) };
}

/** Removes a smoke-test container by name; nothing happens when there is none. */
export async function removeSmokeContainer(name: string): Promise<void> {
  await docker(['rm', '--force', name], () => undefined);
}

function cut(text: string): string {
  return text.length > MAX_ANSWER_CHARS ? `${text.slice(0, MAX_ANSWER_CHARS)}…` : text;
}

export async function smokeTest(req: SmokeTestRequest): Promise<SmokeCheck> {
  const { platform, log, signal } = req;
  await removeSmokeContainer(req.containerName);
  const runOutput: string[] = [];
  const code = await docker(
    ['run', '--detach', '--network', 'host', '--platform', platform, '--name', req.containerName, '--label', 'io.edgeml.smoke-test=true', '-e', 'PORT=0', '-e', 'HOST=127.0.0.1', req.ref],
    (line) => {
      runOutput.push(line);
      log(`[${platform}] ${line}`);
    },
    signal,
  );
  if (code !== 0) return { status: 'failed', message: `docker run failed (exit ${code})`, output: runOutput.slice(-OUTPUT_LINES).join('\n') };
  const id = runOutput.at(-1)!.trim();
  let answer = '';
  try {
    const deadline = Date.now() + req.timeoutMs;
    const fail = async (message: string): Promise<SmokeCheck> => ({
      status: 'failed',
      message,
      output: [...(await containerOutput(id)), ...(answer ? [answer] : [])].join('\n'),
    });

    let base: string | undefined;
    for (;;) {
      if (signal?.aborted) throw new EdgemlError(ErrorCodes.HUB_BUILD_CANCELLED, 'the build was cancelled');
      if (Date.now() > deadline) return await fail(`not healthy within ${Math.round(req.timeoutMs / 1000)} s`);
      const state = await containerState(id);
      if (!state.running) return await fail(`the container exited with code ${state.exitCode} before it was healthy`);
      if (!base) {
        const port = (await containerOutput(id)).map((l) => /"msg":"listening".*"port":(\d+)/.exec(l)?.[1]).find(Boolean);
        if (port) base = `http://127.0.0.1:${port}`;
      }
      if (base) {
        const health = await fetch(`${base}/health`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
        if (health?.status === 200) break;
        const body = (await health?.json().catch(() => undefined)) as { status?: string; error?: string } | undefined;
        if (body?.status === 'failed') return await fail(`/health says failed: ${body.error ?? 'no reason given'}`);
      }
      await sleep(POLL_MS, signal);
    }

    log(`[${platform}] healthy; scoring the sample`);
    const res = await fetch(`${base}/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req.sample),
      signal: AbortSignal.timeout(Math.max(5000, deadline - Date.now())),
    }).catch((err: Error) => err);
    if (res instanceof Error) return await fail(`the sample got no answer: ${res.message}`);
    answer = `POST /score → ${res.status} ${cut(await res.text())}`;
    log(`[${platform}] ${answer}`);
    if (res.status !== 200) return await fail(`the sample got HTTP ${res.status}`);
    return { status: 'passed', message: 'the sample scored with HTTP 200', output: [...(await containerOutput(id)), answer].join('\n') };
  } finally {
    await removeSmokeContainer(req.containerName);
  }
}
