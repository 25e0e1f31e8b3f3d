/**
 * Sums of scoring code's own figures (protocol `custom`): the agent adds up a service's replicas,
 * the hub adds up intervals and devices, the same way. Maps, not objects, while summing: a name
 * such as `__proto__` matches the name pattern and must stay a name. At most `maxNames` distinct
 * names are kept; what does not fit is counted, not grown without bound.
 */
import { MAX_CUSTOM_METRICS, type CustomIntervalMetrics, type CustomObservation } from './protocol.js';

export class CustomSum {
  readonly counters = new Map<string, number>();
  readonly observations = new Map<string, CustomObservation>();

  constructor(private readonly maxNames = MAX_CUSTOM_METRICS) {}

  /** Adds one interval's (or replica's) figures; returns how many names did not fit. */
  add(figures: CustomIntervalMetrics | undefined): number {
    let leftOut = 0;
    const room = (known: boolean): boolean => {
      if (known || this.counters.size + this.observations.size < this.maxNames) return true;
      leftOut++;
      return false;
    };
    for (const [name, v] of Object.entries(figures?.counters ?? {})) {
      // A name that is a counter in one place and an observation in another (two revisions) keeps its first kind.
      if (this.observations.has(name) || !room(this.counters.has(name))) continue;
      this.counters.set(name, (this.counters.get(name) ?? 0) + v);
    }
    for (const [name, o] of Object.entries(figures?.observations ?? {})) {
      if (this.counters.has(name) || !room(this.observations.has(name))) continue;
      const s = this.observations.get(name);
      this.observations.set(name, s ? { count: s.count + o.count, sum: s.sum + o.sum, min: Math.min(s.min, o.min), max: Math.max(s.max, o.max) } : { ...o });
    }
    return leftOut;
  }

  empty(): boolean {
    return this.counters.size === 0 && this.observations.size === 0;
  }

  /** The wire form, names sorted, without an empty part. */
  toWire(): CustomIntervalMetrics {
    const sorted = <T>(m: Map<string, T>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return { ...(this.counters.size > 0 ? { counters: sorted(this.counters) } : {}), ...(this.observations.size > 0 ? { observations: sorted(this.observations) } : {}) };
  }
}
