/**
 * What to do to bring the device's containers to its desired services, as a pure function of both:
 * so every situation a crash can leave (duplicates, a new container that never started or was never
 * seen healthy, an old one still serving, a service no longer wanted) has one answer, tested without
 * Docker.
 *
 * Only a promoted container (one the agent saw healthy and switched the route to, recorded on disk)
 * is trusted to serve. A container that runs but was never promoted may be a bad revision whose
 * health check a crash interrupted: `unless-stopped` keeps it "running", so running proves nothing.
 */
import type { DesiredService } from '../../shared/protocol.js';
import type { ManagedContainer } from '../runtime/container-runtime.js';

export interface Plan {
  /** Services whose desired revision already serves: route to this container. */
  keep: Array<{ service: DesiredService; container: ManagedContainer }>;
  /**
   * Services that need a new container; `previous` (if any) keeps serving until the new one is
   * healthy, and is removed only after the switch (blue/green).
   */
  rollout: Array<{ service: DesiredService; previous: ManagedContainer | null }>;
  /** Containers that serve nothing anyone wants, or were never promoted: safe to remove now. */
  remove: ManagedContainer[];
}

export function plan(desired: readonly DesiredService[], containers: readonly ManagedContainer[], promoted: ReadonlySet<string>): Plan {
  const out: Plan = { keep: [], rollout: [], remove: [] };
  const wanted = new Set(desired.map((s) => s.name));
  for (const c of containers) if (!wanted.has(c.service)) out.remove.push(c);

  for (const service of desired) {
    const mine = containers.filter((c) => c.service === service.name);
    const serving = mine.find((c) => c.running && promoted.has(c.id)) ?? null;
    out.remove.push(...mine.filter((c) => c !== serving));
    if (serving && serving.revision === service.revision && serving.image === service.image) out.keep.push({ service, container: serving });
    else out.rollout.push({ service, previous: serving });
  }
  return out;
}
