/**
 * How the reconciler asks a new container whether it is ready, behind an interface so the loop's
 * unit tests answer for it without sockets. The real probe is the scoring runtime's `GET /health`
 * (DESIGN.md, "Scoring runtime contract").
 */

/** `failed`: the container says it never will be (init() threw); otherwise it may still become ready. */
export type HealthAnswer = { healthy: true } | { healthy: false; failed: string | null };

export interface HealthProbe {
  probe(port: number, signal: AbortSignal): Promise<HealthAnswer>;
}

/** One probe must not outlast a container that stopped answering. */
const PROBE_TIMEOUT_MS = 5000;

export const httpHealthProbe: HealthProbe = {
  probe: async (port, signal) => {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.any([signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]) }).catch(() => undefined);
    if (res?.status === 200) return { healthy: true };
    const body = (await res?.json().catch(() => undefined)) as { status?: string; error?: string } | undefined;
    return { healthy: false, failed: body?.status === 'failed' ? (body.error ?? 'no reason given') : null };
  },
};
