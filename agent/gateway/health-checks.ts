/**
 * Active health checks: every interval, each replica in rotation is probed (the runtime's
 * `GET /health`, behind the reconciler's HealthProbe). A replica is ejected when it says it failed,
 * when its port refuses connections, or after FAILURES_TO_EJECT rounds in a row without a healthy
 * answer: one slow answer (a model holding its event loop, an agent short of sockets) must not get
 * a busy, healthy replica destroyed. Without them a replica that hangs but still accepts
 * connections would keep its share of requests until each timed out.
 */
import type { Clock } from '../../shared/clock.js';
import { accepts } from './port-check.js';
import type { Logger } from '../../shared/logger.js';
import type { HealthProbe } from '../reconcile/health-probe.js';
import type { RouteTable } from '../reconcile/routes.js';
import type { ReplicaRotation } from './rotation.js';

export const DEFAULT_HEALTH_INTERVAL_MS = 5000;
export const FAILURES_TO_EJECT = 3;

export interface HealthChecks {
  stop(): void;
}

export interface HealthCheckOptions {
  routes: RouteTable;
  rotation: ReplicaRotation;
  probe: HealthProbe;
  clock: Clock;
  intervalMs: number;
  logger: Logger;
  /** After each round: the gateway lets waiting requests onto replicas that joined meanwhile. */
  afterRound?: () => void;
  /** Whether a port still takes connections (default: a loopback connect). */
  accepts?: (port: number) => Promise<boolean>;
}

export function startHealthChecks(o: HealthCheckOptions): HealthChecks {
  const stopping = new AbortController();
  let timer: unknown = null;
  const portAccepts = o.accepts ?? accepts;
  /** Rounds in a row without a healthy answer, per container in rotation. */
  const misses = new Map<string, number>();

  const probeAll = async (): Promise<void> => {
    const checks = o.routes.list().flatMap((route) => o.rotation.of(route.service).replicas.map((replica) => ({ service: route.service, replica })));
    const probed = new Set(checks.map((c) => c.replica.container));
    for (const container of misses.keys()) if (!probed.has(container)) misses.delete(container);
    await Promise.all(
      checks.map(async ({ service, replica }) => {
        const answer = await o.probe.probe(replica.port, stopping.signal).catch(() => ({ healthy: false as const, failed: null }));
        if (stopping.signal.aborted) return;
        if (answer.healthy) return void misses.delete(replica.container);
        const missed = (misses.get(replica.container) ?? 0) + 1;
        misses.set(replica.container, missed);
        const closed = !(await portAccepts(replica.port));
        if (answer.failed === null && !closed && missed < FAILURES_TO_EJECT) return;
        misses.delete(replica.container);
        const why = answer.failed ?? (closed ? 'its port refuses connections' : `no healthy answer ${missed} times in a row`);
        o.rotation.eject(service, replica, `health check failed: ${why}`);
      }),
    );
  };

  // The next round is timed from the end of this one, so a slow probe never overlaps the next.
  const schedule = (): void => {
    timer = o.clock.setTimeout(() => {
      probeAll()
        .then(() => o.afterRound?.())
        .catch((err: unknown) => o.logger.error({ err }, 'health checks failed'))
        .finally(() => {
          if (!stopping.signal.aborted) schedule();
        });
    }, o.intervalMs);
  };
  schedule();

  return {
    stop: () => {
      stopping.abort();
      o.clock.clearTimeout(timer);
    },
  };
}
