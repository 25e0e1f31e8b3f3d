/**
 * The agent's autoscaler: every SAMPLE_MS it reads each autoscaled service's load from the gateway,
 * applies the rule (scale-rule.ts) and the resource guard (memory-guard.ts), and answers the
 * reconciler's `desired(service)`. Each decision is logged once with its numbers, kept as the
 * service's `lastScale` for reports, and counted for telemetry; when an answer changes, `onChange`
 * asks the reconciler for a pass. A service with min = max runs that count and is never sampled.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { scaleOf, type DesiredService, type ScaleDecision } from '../../shared/protocol.js';
import { clampReplicas, type ReplicaTarget } from '../reconcile/replica-target.js';
import type { Commitments, MemoryGuard } from './memory-guard.js';
import { decide, targetPerReplica, type LoadSample } from './scale-rule.js';

/** What the gateway sees of a service now. */
export interface ServiceLoad {
  inFlight: number;
  queued: number;
  /** Replicas in the rotation. */
  ready: number;
}

/** The gateway (agent/gateway/server.ts): `Gateway.load`. */
export interface LoadSource {
  load(service: string): ServiceLoad;
}

/** Replicas added, removed, and additions the resource guard refused. */
export interface ScalingCounts {
  up: number;
  down: number;
  held: number;
}

export interface AutoscalerOptions {
  load: LoadSource;
  /** The services the device should run now. */
  desired: () => readonly DesiredService[];
  guard: MemoryGuard;
  /** Called when an answer of `desired()` changed: the reconciler's trigger. */
  onChange: () => void;
  clock: Clock;
  logger: Logger;
  /** Default SAMPLE_MS. */
  sampleMs?: number;
}

export const SAMPLE_MS = 500;

interface ServiceState {
  count: number;
  samples: LoadSample[];
  since: number;
  changedAt: number;
  capacity?: string;
  lastScale?: ScaleDecision;
  /** The guard's last refusal, so one that persists is logged and counted once. */
  heldAt?: { from: number; wanted: number };
}

const autoscaled = (s: DesiredService) => scaleOf(s).maxReplicas > scaleOf(s).minReplicas;
const seconds = (ms: number) => `${ms / 1000}s`;
const round = (n: number) => Math.round(n * 100) / 100;

export class Autoscaler implements ReplicaTarget {
  readonly #states = new Map<string, ServiceState>();
  #counts = new Map<string, ScalingCounts>();
  /** Replicas running when the reconciler first asked about a service, before any sample. */
  readonly #runningAtStart = new Map<string, number>();
  #timer: unknown = null;
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(private readonly o: AutoscalerOptions) {}

  start(): void {
    this.#schedule();
  }

  /** Stops sampling; waits for a sample in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    this.o.clock.clearTimeout(this.#timer);
    await this.#running;
  }

  desired(service: DesiredService, running: number): number {
    if (!autoscaled(service)) return clampReplicas(service, scaleOf(service).minReplicas);
    const state = this.#states.get(service.name);
    if (state) return clampReplicas(service, state.count);
    // Not sampled yet (the agent just started): what runs stays until the load says otherwise.
    this.#runningAtStart.set(service.name, running);
    return clampReplicas(service, running);
  }

  status(name: string): { capacity?: string; lastScale?: ScaleDecision } {
    const state = this.#states.get(name);
    return { ...(state?.capacity ? { capacity: state.capacity } : {}), ...(state?.lastScale ? { lastScale: state.lastScale } : {}) };
  }

  /** The decisions since the previous call, per service that had any; for one reader, the metrics collector. */
  takeInterval(): Record<string, ScalingCounts> {
    const counts = Object.fromEntries(this.#counts);
    this.#counts = new Map();
    return counts;
  }

  #schedule(): void {
    this.#timer = this.o.clock.setTimeout(() => {
      this.#running = this.sample()
        .catch((err: unknown) => this.o.logger.error({ err }, 'an autoscaler sample failed'))
        .finally(() => {
          this.#running = null;
          if (!this.#closed) this.#schedule();
        });
    }, this.o.sampleMs ?? SAMPLE_MS);
  }

  /** One sample of every autoscaled service, and the decisions it leads to. Public for tests. */
  async sample(): Promise<void> {
    const now = this.o.clock.now();
    const services = this.o.desired().filter(autoscaled);
    const names = new Set(services.map((s) => s.name));
    for (const name of this.#states.keys()) if (!names.has(name)) this.#states.delete(name);
    for (const name of this.#runningAtStart.keys()) if (this.#states.has(name) || !names.has(name)) this.#runningAtStart.delete(name);
    let changed = false;
    for (const service of services) {
      const { inFlight, queued, ready } = this.o.load.load(service.name);
      // Nothing runs and the reconciler has not said what will (a restarted agent whose first pass
      // is slow): a state made now would start from the minimum and scale a busy service down.
      if (!this.#states.has(service.name) && !this.#runningAtStart.has(service.name) && ready === 0) continue;
      const state = this.#stateOf(service, now);
      state.samples.push({ at: now, load: inFlight + queued, ready });
      const scale = scaleOf(service);
      const keep = now - Math.max(scale.scaleUpWindowMs, scale.scaleDownWindowMs);
      while (state.samples[0]!.at <= keep) state.samples.shift();
      // A new range (service update) moves the count into it at once.
      const clamped = clampReplicas(service, state.count);
      if (clamped !== state.count) {
        state.count = clamped;
        state.changedAt = now;
        changed = true;
      }
      if (await this.#decide(service, state, now)) changed = true;
    }
    if (changed) this.o.onChange();
  }

  #stateOf(service: DesiredService, now: number): ServiceState {
    let state = this.#states.get(service.name);
    if (!state) {
      // Each sample stands for the interval before it: ten samples of 500 ms fill a 5 s window.
      const since = now - (this.o.sampleMs ?? SAMPLE_MS);
      const count = clampReplicas(service, this.#runningAtStart.get(service.name) ?? 0);
      state = { count, samples: [], since, changedAt: since };
      this.#states.set(service.name, state);
    }
    return state;
  }

  /** Applies what the rule wants; true if the count changed. */
  async #decide(service: DesiredService, state: ServiceState, now: number): Promise<boolean> {
    const want = decide({ service, samples: state.samples, now, since: state.since, current: state.count, changedAt: state.changedAt });
    const scale = scaleOf(service);
    const target = round(targetPerReplica(service));
    const from = state.count;
    if (want.kind !== 'up') {
      state.capacity = undefined;
      state.heldAt = undefined;
    }
    if (want.kind === 'stay') return false;
    if (want.kind === 'down') {
      const window = seconds(scale.scaleDownWindowMs);
      const reason = `load needed at most ${want.need} replica(s) over ${window}, below ${from}`;
      this.#record(service.name, state, now, { from, to: want.to, reason }, 'down', from - want.to);
      this.o.logger.info({ service: service.name, from, to: want.to, need: want.need, target, window }, 'scaled down');
      return true;
    }

    const window = seconds(scale.scaleUpWindowMs);
    const load = `load ${round(want.avgLoad)} per replica > ${scale.targetUtilization} × maxConcurrent ${service.limits.maxConcurrent} over ${window}`;
    const numbers = { service: service.name, from, wanted: want.to, avgLoad: round(want.avgLoad), avgTotal: round(want.avgTotal), target, window };
    const fit = await this.o.guard
      .fit({ service: service.name, memoryBytes: service.limits.memoryBytes, from, wanted: want.to, commitments: this.#commitments() })
      // Nothing proves a replica fits: hold, and say why (logged once, below, like any hold).
      .catch((err: unknown) => ({
        to: from,
        capacity: `capacity: the device's available memory could not be read (${String((err as Error).message).slice(0, 200)})`,
        availableBytes: undefined,
      }));
    state.capacity = fit.capacity;
    const memory = fit.availableBytes === undefined ? {} : { available: fit.availableBytes, margin: this.o.guard.marginBytes, memoryBytes: service.limits.memoryBytes };
    if (fit.to > from) {
      state.heldAt = fit.capacity ? { from: fit.to, wanted: want.to } : undefined;
      this.#record(service.name, state, now, { from, to: fit.to, reason: fit.capacity ? `${load}; ${fit.capacity}` : load }, 'up', fit.to - from);
      if (fit.capacity) this.#count(service.name, 'held', want.to - fit.to);
      this.o.logger.info({ ...numbers, to: fit.to, ...memory, capacity: fit.capacity }, 'scaled up');
      return true;
    }
    if (state.heldAt?.from === from && state.heldAt.wanted === want.to) return false;
    state.heldAt = { from, wanted: want.to };
    this.#record(service.name, state, now, { from, to: from, reason: `${load}; ${fit.capacity}` }, 'held', want.to - from);
    this.o.logger.warn({ ...numbers, to: from, ...memory, capacity: fit.capacity }, 'scale-up held by capacity');
    return false;
  }

  #record(service: string, state: ServiceState, now: number, d: Omit<ScaleDecision, 'at'>, kind: keyof ScalingCounts, n: number): void {
    state.lastScale = { at: new Date(now).toISOString(), ...d };
    if (d.to !== state.count) {
      state.count = d.to;
      state.changedAt = now;
    }
    this.#count(service, kind, n);
  }

  #count(service: string, kind: keyof ScalingCounts, n: number): void {
    let c = this.#counts.get(service);
    if (!c) this.#counts.set(service, (c = { up: 0, down: 0, held: 0 }));
    c[kind] += n;
  }

  /** The memory limits of every replica the agent runs or is starting, and of those not ready yet, all services. */
  #commitments(): Commitments {
    let committedBytes = 0;
    let pendingBytes = 0;
    for (const s of this.o.desired()) {
      const limit = s.limits.memoryBytes ?? 0;
      const count = this.desired(s, this.#runningAtStart.get(s.name) ?? 0);
      const ready = this.#states.get(s.name)?.samples.at(-1)?.ready ?? count;
      committedBytes += count * limit;
      pendingBytes += Math.max(0, count - ready) * limit;
    }
    return { committedBytes, pendingBytes };
  }
}
