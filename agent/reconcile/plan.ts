/**
 * What to do to bring the device's containers to its desired services, as a pure function of both:
 * so every situation a crash can leave (duplicates, a new container that never started, an old one
 * still serving, a service no longer wanted) has one answer, tested without Docker.
 */
import type { DesiredService } from '../../shared/protocol.js';
import type { ManagedContainer } from '../runtime/docker.js';

export interface Plan {
  /** Services whose desired revision already runs: route to this container. */
  keep: Array<{ service: DesiredService; container: ManagedContainer }>;
  /**
   * Services that need a new container; `previous` (if any) keeps serving until the new one is
   * healthy, and is removed only after the switch (blue/green).
   */
  rollout: Array<{ service: DesiredService; previous: ManagedContainer | null }>;
  /** Containers that serve nothing anyone wants: safe to remove now. */
  remove: ManagedContainer[];
}

const newestFirst = (a: ManagedContainer, b: ManagedContainer) => b.created - a.created || b.id.localeCompare(a.id);

export function plan(desired: readonly DesiredService[], containers: readonly ManagedContainer[]): Plan {
  const out: Plan = { keep: [], rollout: [], remove: [] };
  const wanted = new Set(desired.map((s) => s.name));
  for (const c of containers) if (!wanted.has(c.service)) out.remove.push(c);

  for (const service of desired) {
    const mine = containers.filter((c) => c.service === service.name).sort(newestFirst);
    const current = mine.find((c) => c.running && c.revision === service.revision && c.image === service.image);
    if (current) {
      out.keep.push({ service, container: current });
      out.remove.push(...mine.filter((c) => c !== current));
      continue;
    }
    const previous = mine.find((c) => c.running) ?? null;
    out.rollout.push({ service, previous });
    out.remove.push(...mine.filter((c) => c !== previous));
  }
  return out;
}
