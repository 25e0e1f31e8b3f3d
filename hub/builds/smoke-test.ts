/**
 * After the push, each platform's image is run once (arm64 under emulation on an x86 hub) with host
 * networking on a loopback port the runtime picks itself, and must answer the manifest's sample.
 * An image that cannot do that here would not do it on a device either.
 */
import type { SmokeCheck } from '../../shared/api/images.js';
import { buildCancelled } from './docker-cli.js';
import { cut, startScoringContainer } from './scoring-container.js';

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

/** The output is stored with the image record. */
const MAX_OUTPUT_CHARS = 8000;

export async function smokeTest(req: SmokeTestRequest): Promise<SmokeCheck> {
  const { platform, log, signal } = req;
  const deadline = Date.now() + req.timeoutMs;
  const started = await startScoringContainer({ ...req, cancelled: buildCancelled });
  if (!started.ok) return { status: 'failed', message: started.message, output: cut(started.output.join('\n'), MAX_OUTPUT_CHARS) };
  const { container } = started;
  let answer = '';
  const fail = async (message: string): Promise<SmokeCheck> => ({
    status: 'failed',
    message,
    output: cut([...(await container.output()), ...(answer ? [answer] : [])].join('\n'), MAX_OUTPUT_CHARS),
  });
  try {
    log(`[${platform}] healthy; scoring the sample`);
    const res = await container.score(req.sample, Math.max(5000, deadline - Date.now()));
    if (signal?.aborted) throw buildCancelled();
    if (res instanceof Error) return await fail(`the sample got no answer: ${res.message}`);
    answer = `POST /score → ${res.status} ${cut(await res.text(), 2000)}`;
    log(`[${platform}] ${answer}`);
    if (res.status !== 200) return await fail(`the sample got HTTP ${res.status}`);
    return { status: 'passed', message: 'the sample scored with HTTP 200', output: cut([...(await container.output()), answer].join('\n'), MAX_OUTPUT_CHARS) };
  } finally {
    await container.remove();
  }
}
