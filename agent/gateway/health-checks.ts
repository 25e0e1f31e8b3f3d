/**
 * Active health checks: every interval, each replica in rotation is probed (the runtime's
 * `GET /health`, behind the reconciler's HealthProbe), and one that does not answer healthy is
 * ejected. Without them a replica that hangs but still accepts connections would keep its share of
 * requests until each timed out.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { HealthProbe } from '../reconcile/health-probe.js';
import type { RouteTable } from '../reconcile/routes.js';
import type { ReplicaRotation } from './rotation.js';

export const DEFAULT_HEALTH_INTERVAL_MS = 5000;

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
}

export function startHealthChecks(o: HealthCheckOptions): HealthChecks {
  const stopping = new AbortController();
  let timer: unknown = null;

  const probeAll = async (): Promise<void> => {
    const checks = o.routes.list().flatMap((route) => o.rotation.of(route.service).replicas.map((replica) => ({ service: route.service, replica })));
    await Promise.all(
      checks.map(async ({ service, replica }) => {
        const answer = await o.probe.probe(replica.port, stopping.signal).catch((err: unknown) => ({ healthy: false as const, failed: (err as Error).message }));
        if (stopping.signal.aborted || answer.healthy) return;
        o.rotation.eject(service, replica, `health check failed${answer.failed ? `: ${answer.failed}` : ''}`);
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
