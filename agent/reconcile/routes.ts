/**
 * The gateway's routing table: for each service, the loopback port of the container that serves it
 * and what the gateway enforces (key hash, limits). The reconciler switches a route in one step
 * once a new container is healthy; the gateway reads it per request.
 */
import type { DesiredService, ServiceLimits } from '../../shared/protocol.js';

export interface Route {
  service: string;
  revision: number;
  image: string;
  port: number;
  keyHash: string;
  limits: ServiceLimits;
  models: DesiredService['models'];
}

export class RouteTable {
  readonly #routes = new Map<string, Route>();

  set(service: DesiredService, port: number): void {
    this.#routes.set(service.name, { service: service.name, revision: service.revision, image: service.image, port, keyHash: service.keyHash, limits: service.limits, models: service.models });
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
