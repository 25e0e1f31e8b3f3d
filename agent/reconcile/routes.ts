/**
 * The gateway's routing table: for each service, the replicas (containers, each on its own loopback
 * port) that serve it and what the gateway enforces (key hash, limits per replica) or samples
 * (capture). The reconciler switches a route in one step once a new revision's replicas are healthy,
 * and sets it again on every pass, so settings outside the revision (capture, limits, replicas added
 * or removed) change without a switch; the gateway reads it per request.
 */
import type { CaptureSettings, DesiredService, ServiceLimits } from '../../shared/protocol.js';

/** One container in a service's rotation. */
export interface Replica {
  container: string;
  port: number;
}

export interface Route {
  service: string;
  revision: number;
  image: string;
  /** Ready replicas of `revision`, in the order they joined; never empty. */
  replicas: readonly Replica[];
  keyHash: string;
  /** Keys a rotation replaced, each taken until its `until` (the gateway's clock). */
  previousKeys?: DesiredService['previousKeys'];
  limits: ServiceLimits;
  models: DesiredService['models'];
  /** Absent: capture is off. */
  capture?: CaptureSettings;
}

/** The route to `replicas` for this desired service: what the table holds after `set(service, replicas)`. */
export function routeOf(service: DesiredService, replicas: readonly Replica[]): Route {
  const { name, revision, image, keyHash, previousKeys, limits, models, capture } = service;
  return { service: name, revision, image, replicas: replicas.map(({ container, port }) => ({ container, port })), keyHash, previousKeys, limits, models, capture };
}

export class RouteTable {
  readonly #routes = new Map<string, Route>();

  set(service: DesiredService, replicas: readonly Replica[]): void {
    this.#routes.set(service.name, routeOf(service, replicas));
  }

  get(service: string): Route | undefined {
    return this.#routes.get(service);
  }

  delete(service: string): void {
    this.#routes.delete(service);
  }

  list(): Route[] {
    return [...this.#routes.values()].sort((a, b) => a.service.localeCompare(b.service));
  }
}
