/**
 * Scoring code's own figures (`metrics.count`, `metrics.observe` in the runtimes), read from each
 * ready replica's `GET /metrics` at every telemetry tick. A container reports totals since it
 * started; the wire carries what happened in the interval, so each container's previous reading is
 * kept and subtracted. A container that restarted (another `startedAt`) or whose counter fell
 * counts from zero again. The replicas' intervals are then summed per service.
 *
 * Observations' min and max are the container's since it started: cumulative extremes cannot be
 * taken apart by interval, so an interval's own extremes lie within them.
 */
import { CUSTOM_METRIC_NAME_PATTERN, MAX_CUSTOM_METRICS, type CustomIntervalMetrics, type CustomObservation } from '../../shared/protocol.js';

/** What one container's `GET /metrics` says, checked. */
export interface ContainerCustomMetrics {
  startedAt: string;
  counters: Record<string, number>;
  observations: Record<string, CustomObservation>;
}

const NAME = new RegExp(CUSTOM_METRIC_NAME_PATTERN);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function observationOf(v: unknown): CustomObservation | undefined {
  if (!isRecord(v)) return undefined;
  const { count, sum, min, max } = v;
  if (!finite(count) || !Number.isSafeInteger(count) || count < 0 || !finite(sum) || !finite(min) || !finite(max)) return undefined;
  return { count, sum, min, max };
}

/**
 * The checked figures, or the reason they cannot be used. Names that break the pattern, values
 * that are not finite, and names past the 100th are left out, not fatal: one bad figure must not
 * cost the service all the others.
 */
export function parseContainerMetrics(body: unknown): { ok: true; value: ContainerCustomMetrics; leftOut: number } | { ok: false; error: string } {
  if (!isRecord(body)) return { ok: false, error: 'not a JSON object' };
  if (typeof body.startedAt !== 'string' || Number.isNaN(Date.parse(body.startedAt))) return { ok: false, error: 'startedAt is not a date' };
  const counters: Array<[string, number]> = [];
  const observations: Array<[string, CustomObservation]> = [];
  const names = new Set<string>();
  let leftOut = 0;
  const take = (name: string): boolean => {
    if (!NAME.test(name) || names.has(name) || names.size >= MAX_CUSTOM_METRICS) return false;
    names.add(name);
    return true;
  };
  for (const [name, v] of Object.entries(isRecord(body.counters) ? body.counters : {})) {
    if (finite(v) && v >= 0 && take(name)) counters.push([name, v]);
    else leftOut++;
  }
  for (const [name, v] of Object.entries(isRecord(body.observations) ? body.observations : {})) {
    const o = observationOf(v);
    if (o && take(name)) observations.push([name, o]);
    else leftOut++;
  }
  // fromEntries defines own properties: a `__proto__` name stays a name.
  return { ok: true, value: { startedAt: body.startedAt, counters: Object.fromEntries(counters), observations: Object.fromEntries(observations) }, leftOut };
}

const own = <T>(record: Record<string, T>, name: string): T | undefined => (Object.hasOwn(record, name) ? record[name] : undefined);

/** `b` less `a`, or undefined when `b` is not a continuation of `a` (a counter fell). */
function difference(a: ContainerCustomMetrics, b: ContainerCustomMetrics): CustomIntervalMetrics | undefined {
  const counters: Array<[string, number]> = [];
  const observations: Array<[string, CustomObservation]> = [];
  for (const [name, v] of Object.entries(b.counters)) {
    const before = own(a.counters, name) ?? 0;
    if (v < before) return undefined;
    if (v > before) counters.push([name, v - before]);
  }
  for (const [name, o] of Object.entries(b.observations)) {
    const before = own(a.observations, name);
    const count = o.count - (before?.count ?? 0);
    if (count < 0) return undefined;
    if (count > 0) observations.push([name, { count, sum: o.sum - (before?.sum ?? 0), min: o.min, max: o.max }]);
  }
  return { counters: Object.fromEntries(counters), observations: Object.fromEntries(observations) };
}

function whole(m: ContainerCustomMetrics): CustomIntervalMetrics {
  return difference({ startedAt: m.startedAt, counters: {}, observations: {} }, m)!;
}

/**
 * Each container's previous reading, to turn its totals into the interval's figures. `since`: when
 * this agent started. A container first seen that started before it (the agent restarted, the
 * container kept running) has its totals taken as the baseline: an earlier agent may have sent them.
 */
export class CustomMetricsDeltas {
  readonly #last = new Map<string, ContainerCustomMetrics>();

  constructor(private readonly since: number) {}

  /** What `container` counted since its previous reading (all of it for a container new or restarted since). */
  delta(container: string, now: ContainerCustomMetrics): CustomIntervalMetrics {
    const before = this.#last.get(container);
    this.#last.set(container, now);
    if (!before) return Date.parse(now.startedAt) < this.since ? {} : whole(now);
    if (before.startedAt !== now.startedAt) return whole(now);
    return difference(before, now) ?? whole(now);
  }

  /**
   * Forgets containers no longer in rotation. One whose read failed is kept: its next reading
   * covers both intervals, so nothing is lost or counted twice.
   */
  keepOnly(containers: ReadonlySet<string>): void {
    for (const id of this.#last.keys()) if (!containers.has(id)) this.#last.delete(id);
  }
}
