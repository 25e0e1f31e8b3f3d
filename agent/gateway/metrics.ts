/**
 * Per-service counters of the scoring gateway, for telemetry: requests, answers by class, the
 * gateway's refusals by cause, and a latency histogram. Cumulative totals answer "since the agent
 * started"; interval counts are taken and reset by whoever ships them. Latency buckets have fixed
 * bounds, the same on every device, so a hub can merge histograms by adding counts bucket by bucket.
 */
import type { Clock } from '../../shared/clock.js';
import { LATENCY_BOUNDS_MS } from '../../shared/latency-histogram.js';
import { GatewayCodes, type GatewayCode } from './errors.js';

/** The bounds live in shared/ because the hub merges histograms from every device with them. */
export { LATENCY_BOUNDS_MS };

export type ResponseClass = '2xx' | '3xx' | '4xx' | '5xx';

export interface LatencyHistogram {
  boundsMs: readonly number[];
  /** Not cumulative: `counts[i]` is the number of requests in (bound[i-1], bound[i]]; the last is +Inf. */
  counts: number[];
  sumMs: number;
}

export interface ServiceCounters {
  requests: number;
  responses: Record<ResponseClass, number>;
  /** 401: no key, or the wrong one. */
  unauthenticated: number;
  /** 429: the queue was full. */
  rejected: number;
  /** 503: no slot within the queue timeout. */
  queueTimeouts: number;
  /** 502, and answers the container broke off partway (the client's response is cut). */
  upstreamErrors: number;
  /** Clients that went away before their answer was complete. */
  aborted: number;
  /**
   * From arrival to the end of the answer, for answers the container gave: the gateway's own quick
   * refusals would drag the percentiles down and say nothing about the model.
   */
  latencyMs: LatencyHistogram;
}

export interface ServiceGauges {
  inFlight: number;
  queued: number;
  /** Replicas in rotation (ready); absent where the source does not know them. */
  replicas?: number;
}

export type ServiceMetrics = ServiceCounters & ServiceGauges;

export interface MetricsReport {
  /** Clock time the counts start from, and the time of the report. */
  from: number;
  to: number;
  services: Record<string, ServiceMetrics>;
}

/** How one request ended. */
export type Outcome =
  /** The container's answer, passed on in full. */
  | { kind: 'answered'; status: number }
  /** The gateway's own error answer (refusal, 502, …). */
  | { kind: 'gateway-error'; status: number; code: GatewayCode }
  /** The container failed after its answer had begun: the client's response was cut. */
  | { kind: 'cut-off' }
  | { kind: 'aborted' };

export interface Exchange {
  /** Counts how the request ended; only the first call counts. */
  finish(outcome: Outcome): void;
}

/** What the rest of the agent may read. */
export interface MetricsSource {
  snapshot(): MetricsReport;
  /**
   * The counts since the previous call (or the start), which start again from zero: for one reader,
   * the telemetry sender. Only services with requests in the interval, or some in flight or queued.
   */
  takeInterval(): MetricsReport;
}

type RefusalCounter = 'unauthenticated' | 'rejected' | 'queueTimeouts' | 'upstreamErrors';

const REFUSAL_COUNTERS: Partial<Record<GatewayCode, RefusalCounter>> = {
  [GatewayCodes.UNAUTHENTICATED]: 'unauthenticated',
  [GatewayCodes.QUEUE_FULL]: 'rejected',
  [GatewayCodes.QUEUE_TIMEOUT]: 'queueTimeouts',
  [GatewayCodes.UPSTREAM]: 'upstreamErrors',
};

function zero(): ServiceCounters {
  return {
    requests: 0,
    responses: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    unauthenticated: 0,
    rejected: 0,
    queueTimeouts: 0,
    upstreamErrors: 0,
    aborted: 0,
    latencyMs: { boundsMs: LATENCY_BOUNDS_MS, counts: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0), sumMs: 0 },
  };
}

function classOf(status: number): ResponseClass {
  return `${Math.min(5, Math.max(2, Math.floor(status / 100)))}xx` as ResponseClass;
}

function observe(h: LatencyHistogram, ms: number): void {
  const i = h.boundsMs.findIndex((bound) => ms <= bound);
  h.counts[i === -1 ? h.boundsMs.length : i]! += 1;
  h.sumMs += ms;
}

function count(c: ServiceCounters, outcome: Outcome, ms: number): void {
  switch (outcome.kind) {
    case 'answered':
      c.responses[classOf(outcome.status)] += 1;
      observe(c.latencyMs, ms);
      return;
    case 'gateway-error': {
      c.responses[classOf(outcome.status)] += 1;
      const counter = REFUSAL_COUNTERS[outcome.code];
      if (counter) c[counter] += 1;
      return;
    }
    case 'cut-off':
      c.upstreamErrors += 1;
      return;
    case 'aborted':
      c.aborted += 1;
      return;
  }
}

export class GatewayMetrics implements MetricsSource {
  readonly #totals = new Map<string, ServiceCounters>();
  #interval = new Map<string, ServiceCounters>();
  readonly #startedAt: number;
  #intervalFrom: number;

  /** `gauges` reads a service's requests in flight and waiting now (the limiter keeps those), and its ready replicas. */
  constructor(
    private readonly clock: Clock,
    private readonly gauges: (service: string) => ServiceGauges,
  ) {
    this.#startedAt = clock.now();
    this.#intervalFrom = this.#startedAt;
  }

  /** Counts a request to `service` as it arrives, and times it until `finish`. */
  start(service: string): Exchange {
    const arrived = this.clock.now();
    this.#update(service, (c) => (c.requests += 1));
    let finished = false;
    return {
      finish: (outcome) => {
        if (finished) return;
        finished = true;
        // Never negative: a clock stepped back mid-request would make the interval's batch invalid.
        const ms = Math.max(0, this.clock.now() - arrived);
        this.#update(service, (c) => count(c, outcome, ms));
      },
    };
  }

  /** A service's cumulative counters (zeros for one never asked for). */
  totals(service: string): ServiceCounters {
    return structuredClone(this.#totals.get(service) ?? zero());
  }

  snapshot(): MetricsReport {
    return this.#report(this.#startedAt, this.#totals, () => true);
  }

  takeInterval(): MetricsReport {
    const interval = this.#interval;
    // Idle services are left out: one removed long ago must not ride along in every batch.
    const report = this.#report(this.#intervalFrom, interval, (name, gauges) => interval.has(name) || gauges.inFlight > 0 || gauges.queued > 0);
    this.#interval = new Map();
    this.#intervalFrom = report.to;
    return report;
  }

  #report(from: number, counters: Map<string, ServiceCounters>, include: (name: string, gauges: ServiceGauges) => boolean): MetricsReport {
    const services: Record<string, ServiceMetrics> = {};
    for (const name of [...this.#totals.keys()].sort()) {
      const gauges = this.gauges(name);
      if (include(name, gauges)) services[name] = { ...structuredClone(counters.get(name) ?? zero()), ...gauges };
    }
    return { from, to: this.clock.now(), services };
  }

  #update(service: string, change: (c: ServiceCounters) => void): void {
    for (const map of [this.#totals, this.#interval]) {
      let c = map.get(service);
      if (!c) map.set(service, (c = zero()));
      change(c);
    }
  }
}
