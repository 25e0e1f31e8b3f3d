/**
 * The gateway's routing table: for each service, the loopback port of the container that serves it
 * and what the gateway enforces (key hash, limits) or samples (capture). The reconciler switches a
 * route in one step once a new container is healthy, and sets it again on every pass, so settings
 * outside the revision (capture) change without a new container; the gateway reads it per request.
 */
import type { CaptureSettings, DesiredService, ServiceLimits } from '../../shared/protocol.js';

export interface Route {
  service: string;
  revision: number;
  image: string;
  port: number;
  keyHash: string;
  /** Keys a rotation replaced, each taken until its `until` (the gateway's clock). */
  previousKeys?: DesiredService['previousKeys'];
  limits: ServiceLimits;
  models: DesiredService['models'];
  /** Absent: capture is off. */
  capture?: CaptureSettings;
}

/** The route to `port` for this desired service: what the table holds after `set(service, port)`. */
export function routeOf(service: DesiredService, port: number): Route {
  const { name, revision, image, keyHash, previousKeys, limits, models, capture } = service;
  return { service: name, revision, image, port, keyHash, previousKeys, limits, models, capture };
}

export class RouteTable {
  readonly #routes = new Map<string, Route>();

  set(service: DesiredService, port: number): void {
    this.#routes.set(service.name, routeOf(service, port));
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
