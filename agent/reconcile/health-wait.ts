/**
 * Waits until a started container is ready: it must keep running and its health probe must say so
 * before the deadline. A container that exits, or says it failed, ends the wait at once.
 */
import type { Clock } from '../../shared/clock.js';
import { ErrorCodes } from '../../shared/errors.js';
import type { ContainerRuntime } from '../runtime/container-runtime.js';
import { failure } from './failure.js';
import type { HealthProbe } from './health-probe.js';

export interface HealthWaitOptions {
  runtime: Pick<ContainerRuntime, 'state'>;
  health: HealthProbe;
  clock: Clock;
  timeoutMs: number;
}

const HEALTH_POLL_MS = 500;

export async function waitHealthy(o: HealthWaitOptions, id: string, port: number, signal: AbortSignal): Promise<void> {
  const deadline = o.clock.now() + o.timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    const state = await o.runtime.state(id);
    if (!state?.running) throw failure(ErrorCodes.AGENT_HEALTH_FAILED, `the container exited with code ${state?.exitCode ?? '?'} before it was healthy`);
    const answer = await o.health.probe(port, signal);
    if (answer.healthy) return;
    if (answer.failed !== null) throw failure(ErrorCodes.AGENT_HEALTH_FAILED, `/health says failed: ${answer.failed}`);
    if (o.clock.now() > deadline) throw failure(ErrorCodes.AGENT_HEALTH_FAILED, `not healthy within ${Math.round(o.timeoutMs / 1000)} s`);
    await pause(o.clock, HEALTH_POLL_MS, signal);
  }
}

/** Ends early (without throwing) when `signal` aborts: the loop above then throws the reason. */
function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const onAbort = () => {
      clock.clearTimeout(timer);
      resolve();
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
