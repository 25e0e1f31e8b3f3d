/**
 * Which replicas of a service take requests now: those its route lists, less those the gateway
 * ejected (a connection failed, or a health probe). Ejection is the gateway's own and immediate:
 * the reconciler is told (`onReplicaDown`) and replaces the replica in its own time; an ejected
 * container is forgotten once the route no longer lists it.
 */
import type { Logger } from '../../shared/logger.js';
import type { Replica, RouteTable } from '../reconcile/routes.js';
import type { Rotation } from './limiter.js';

export type ReplicaDown = (service: string, replica: Replica, reason: string) => void;

const NO_ROTATION: Rotation = { limits: { maxConcurrent: 0, maxQueue: 0 }, replicas: [] };
/** Containers remembered as failed after the route has dropped them (a bounded list, oldest out first). */
const FAILED_KEPT = 256;

export class ReplicaRotation {
  /** Ejected container ids, with the service they served. */
  readonly #ejected = new Map<string, string>();
  /** Every container ejected lately, listed or not: its end was a failure, not a drain. */
  readonly #failed = new Set<string>();

  constructor(
    private readonly routes: RouteTable,
    private readonly logger: Logger,
    private readonly onReplicaDown?: ReplicaDown,
  ) {}

  of(service: string): Rotation {
    const route = this.routes.get(service);
    if (this.#ejected.size > 0) this.#forgetUnlisted(service, route?.replicas ?? []);
    if (!route) return NO_ROTATION;
    return { limits: route.limits, replicas: this.#ejected.size > 0 ? route.replicas.filter((r) => !this.#ejected.has(r.container)) : route.replicas };
  }

  /** Whether the route of `service` lists `container` now (a replica it dropped is not down, it was retired). */
  listed(service: string, container: string): boolean {
    return this.routes.get(service)?.replicas.some((r) => r.container === container) ?? false;
  }

  /** Whether the gateway ejected this container (lately): it failed, rather than being drained. */
  failed(container: string): boolean {
    return this.#failed.has(container);
  }

  /** Takes a listed replica out of rotation; the first time, the reconciler hears of it. */
  eject(service: string, replica: Replica, reason: string): void {
    if (this.#ejected.has(replica.container) || !this.listed(service, replica.container)) return;
    this.#ejected.set(replica.container, service);
    this.#failed.add(replica.container);
    if (this.#failed.size > FAILED_KEPT) this.#failed.delete(this.#failed.values().next().value!);
    this.logger.warn({ service, container: replica.container, port: replica.port, reason }, 'replica left the rotation');
    try {
      this.onReplicaDown?.(service, replica, reason);
    } catch (err) {
      this.logger.error({ err, service, container: replica.container }, 'onReplicaDown failed');
    }
  }

  #forgetUnlisted(service: string, listed: readonly Replica[]): void {
    for (const [container, of] of this.#ejected) {
      if (of === service && !listed.some((r) => r.container === container)) this.#ejected.delete(container);
    }
  }
}
