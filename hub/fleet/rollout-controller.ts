/**
 * Runs rollouts: starts them (with the deployment change they carry, in one store write), drives
 * each active one with the engine on a tick, writes the devices it moves into their desired state,
 * and turns an abort into a rollback (an all-at-once rollout of the moved devices back to what they
 * had; an aborted retarget gets its old target back). Everything lives in the store, so a restarted
 * hub resumes every rollout where it was.
 */
import { isDeepStrictEqual } from 'node:util';
import type { RolloutSummary } from '../../shared/api/deployments.js';
import { matchesLabels, type Labels } from '../../shared/api/devices.js';
import { COMPLETED_ROLLOUT_PHASES, ROLLOUT_DEVICE_PHASES, ROLLOUT_GATE_NAMES, ROLLOUT_PHASES, type Rollout, type RolloutGate, type RolloutPhase, type RolloutRequest } from '../../shared/api/rollouts.js';
import type { Clock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ActorRecord, DeploymentRecord, RolloutRecord, RolloutRepository } from '../store/store.js';
import type { DesiredStates } from './desired-states.js';
import type { DeviceDirectory } from './device-directory.js';
import { advance, devicePhase, isSettled, namesOf, planBatches, resolveOptions, resume, type DeviceView, type HealthGate } from './rollout-engine.js';
import { MEASURE_EVERY_MS } from './rollout-gates.js';
import { GateMeasureError, type GateMeter } from './rollout-gates-measure.js';

const TICK_MS = 500;
/** After a hub start, devices get this long to reconnect before "offline" lets a batch go on without them. */
export const RECONNECT_GRACE_MS = 30_000;
/** A failed gate measurement is tried again after MEASURE_EVERY_MS, doubling per failure up to this. */
export const MEASURE_BACKOFF_MAX_MS = 30_000;

export interface RolloutStart {
  kind: 'create' | 'update' | 'retarget';
  service: string;
  /** The revision devices move to (a retarget: the one devices that newly match get). */
  revision: number | null;
  /** Devices to move, with the revision each has now (null: none). */
  devices: ReadonlyMap<string, number | null>;
  /** Where a device goes when not to `revision` (a retarget: null for devices that no longer match). */
  to?: ReadonlyMap<string, number | null>;
  /** A retarget's selectors. */
  target?: { from: Labels; to: Labels };
  fromRevision: number | null;
  request: RolloutRequest | undefined;
  actor: ActorRecord;
  /** The deployment change the rollout carries, made in the same write. */
  deployment: { add: DeploymentRecord } | { update: (d: DeploymentRecord) => void };
}

function summary(r: RolloutRecord): RolloutSummary {
  return { id: r.id, kind: r.kind, revision: r.revision, strategy: r.strategy, phase: r.phase, devices: Object.keys(r.devices).sort() };
}

function conflict(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.HUB_CONFLICT, message, { httpStatus: 409 });
}

export class RolloutController {
  #timer: unknown = null;
  #ticking: Promise<void> = Promise.resolve();
  #closed = false;
  #offlineTrustedFrom = 0;
  /** Gate measurements in flight, one per rollout: they read the archive, so ticks never wait for them. */
  readonly #measuring = new Map<number, Promise<void>>();
  /** After failed measurements: how many in a row, and not before when the next one may start. */
  readonly #measureBackoff = new Map<number, { failures: number; notBefore: number }>();

  constructor(
    private readonly deps: {
      rollouts: RolloutRepository;
      devices: DeviceDirectory;
      desired: DesiredStates;
      clock: Clock;
      logger: Logger;
      gates?: readonly HealthGate[];
      /** Measures a rollout's own gates (options.gates) when the engine asks; absent: they wait, then fail. */
      measure?: GateMeter;
    },
  ) {}

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  /** Resumes active rollouts (after a restart) and ticks from now on. */
  start(): void {
    this.#offlineTrustedFrom = this.deps.clock.now() + RECONNECT_GRACE_MS;
    this.schedule();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.deps.clock.clearTimeout(this.#timer);
    await this.#ticking;
    await Promise.all(this.#measuring.values());
  }

  /** A new rollout; an active one of the same service is superseded (its devices stay where they are). */
  async begin(s: RolloutStart): Promise<{ rollout: RolloutRecord; deployment: DeploymentRecord }> {
    const { strategy, options } = resolveOptions(s.request);
    // A retarget adds devices before it takes any away: the service never runs nowhere in between.
    const leaving = (id: string) => (s.to?.get(id) === null ? 1 : 0);
    const batches = planBatches([...s.devices.keys()], strategy, options, leaving);
    const now = this.now();
    const devices: RolloutRecord['devices'] = {};
    batches.forEach((ids, batch) => {
      for (const id of ids) {
        const to = s.to?.has(id) ? s.to.get(id)! : s.revision;
        devices[id] = { batch, from: s.devices.get(id) ?? null, to, state: 'waiting', movedAt: null, deadline: null, doneAt: null, error: null };
      }
    });
    const record: Omit<RolloutRecord, 'id'> = {
      service: s.service,
      kind: s.kind,
      revision: s.revision,
      fromRevision: s.fromRevision,
      strategy,
      ...(s.target ? { target: s.target } : {}),
      options,
      phase: batches.length === 0 ? 'succeeded' : 'running',
      reason: null,
      batchCount: batches.length,
      batch: 0,
      soakUntil: null,
      rolledBackBy: null,
      rollbackOf: null,
      devices,
      createdAt: now,
      updatedAt: now,
      finishedAt: batches.length === 0 ? now : null,
      createdBy: s.actor,
    };
    const active = (await this.deps.rollouts.list({ service: s.service, active: true }))[0];
    // Nobody to move (no device matches yet): the new revision is what devices get from now on.
    const settled = record.phase === 'succeeded';
    const { deployment } = s;
    const started = await this.deps.rollouts.start(
      record,
      'add' in deployment
        ? { add: (id) => ({ ...deployment.add, rollout: summary({ ...record, id }), stableRevision: settled ? s.revision : deployment.add.stableRevision }) }
        : {
            update: (d, id) => {
              deployment.update(d);
              d.rollout = summary({ ...record, id });
              if (settled) d.stableRevision = s.revision;
            },
          },
      active && {
        id: active.id,
        change: (r, id) => {
          r.phase = 'superseded';
          r.reason = `superseded by rollout ${id}`;
          r.finishedAt = now;
        },
      },
    );
    this.deps.logger.info({ rollout: started.rollout.id, service: s.service, revision: s.revision, strategy, batches: batches.length, devices: s.devices.size }, 'rollout started');
    await this.tick();
    return { rollout: (await this.deps.rollouts.get(started.rollout.id))!, deployment: started.deployment };
  }

  async pause(id: number): Promise<Rollout> {
    await this.change(id, (r) => {
      if (r.phase !== 'running') throw conflict(`rollout ${id} is ${r.phase}: only a running rollout can be paused`);
      r.phase = 'paused';
    });
    this.deps.logger.info({ rollout: id }, 'rollout paused');
    return this.view(id);
  }

  async resume(id: number): Promise<Rollout> {
    await this.change(id, (r) => {
      if (r.phase !== 'paused') throw conflict(`rollout ${id} is ${r.phase}: only a paused rollout can be resumed`);
      resume(r, this.deps.clock.now());
    });
    this.deps.logger.info({ rollout: id }, 'rollout resumed');
    await this.tick();
    return this.view(id);
  }

  /** Stops the rollout and rolls back every device it moved. */
  async abort(id: number, actor: ActorRecord): Promise<Rollout> {
    const r = await this.deps.rollouts.get(id);
    if (!r) throw new EdgemlError(ErrorCodes.HUB_ROLLOUT_NOT_FOUND, `rollout ${id} not found`, { httpStatus: 404 });
    if (r.phase !== 'running' && r.phase !== 'paused') throw conflict(`rollout ${id} is ${r.phase}: only a running or paused rollout can be aborted`);
    if (r.kind === 'rollback') throw conflict(`rollout ${id} is a rollback: it cannot be aborted (deploy again instead)`);
    await this.rollBack(r, `aborted by ${actor.keyName} (${actor.keyId})`);
    await this.tick();
    return this.view(id);
  }

  async get(id: number): Promise<RolloutRecord> {
    const r = await this.deps.rollouts.get(id);
    if (!r) throw new EdgemlError(ErrorCodes.HUB_ROLLOUT_NOT_FOUND, `rollout ${id} not found`, { httpStatus: 404 });
    return r;
  }

  /** The API view: the record with each device's live phase, counts and progress. */
  async view(id: number): Promise<Rollout> {
    return this.toView(await this.get(id));
  }

  /** Every stored rollout counted by phase, each phase present (for /metrics). */
  async countByPhase(): Promise<Record<RolloutPhase, number>> {
    const counts = Object.fromEntries(ROLLOUT_PHASES.map((p) => [p, 0])) as Record<RolloutPhase, number>;
    for (const r of await this.deps.rollouts.list({})) counts[r.phase] += 1;
    return counts;
  }

  async list(filter: { service?: string; active?: boolean }): Promise<Array<Omit<Rollout, 'devices'>>> {
    return (await this.deps.rollouts.list(filter)).map((r) => {
      const { devices: _devices, ...rest } = this.toView(r);
      return rest;
    });
  }

  private toView(r: RolloutRecord): Rollout {
    const counts: Record<string, number> = Object.fromEntries(ROLLOUT_DEVICE_PHASES.map((p) => [p, 0]));
    const ids = Object.keys(r.devices).sort();
    const devices = ids.map((id) => {
      const d = r.devices[id]!;
      const phase = devicePhase(d, this.deviceView(id, r.service), r.kind === 'rollback');
      counts[phase] = (counts[phase] ?? 0) + 1;
      return { id, batch: d.batch, phase, previousRevision: d.from, movedAt: d.movedAt, doneAt: d.doneAt, error: d.error };
    });
    const settled = ids.filter((id) => isSettled(r.devices[id]!)).length;
    const { batchCount, devices: _d, createdBy: _c, ...rest } = r;
    return { ...rest, batches: batchCount, counts, progress: ids.length === 0 ? 1 : settled / ids.length, devices, gates: r.gates ?? [] };
  }

  private deviceView(id: string, service: string): DeviceView {
    let device;
    try {
      device = this.deps.devices.get(id);
    } catch {
      return { online: false, service: null };
    }
    return { online: device.status === 'online', service: device.services.find((s) => s.name === service) ?? null };
  }

  private async change(id: number, apply: (r: RolloutRecord) => void): Promise<void> {
    await this.get(id);
    await this.deps.rollouts.update(id, (r, d) => {
      apply(r);
      r.updatedAt = this.now();
      if (d.rollout.id === r.id) d.rollout.phase = r.phase;
    });
  }

  private schedule(): void {
    if (this.#closed) return;
    this.#timer = this.deps.clock.setTimeout(() => {
      void this.tick().finally(() => this.schedule());
    }, TICK_MS);
  }

  /** One step of every active rollout; ticks never overlap. */
  tick(): Promise<void> {
    const run = async () => {
      const active = await this.deps.rollouts.list({ active: true });
      for (const id of this.#measureBackoff.keys()) if (!active.some((r) => r.id === id)) this.#measureBackoff.delete(id);
      for (const r of active) {
        try {
          await this.step(r);
        } catch (err) {
          this.deps.logger.error({ err, rollout: r.id }, 'rollout step failed; retried on the next tick');
        }
      }
    };
    this.#ticking = this.#ticking.then(run, run);
    return this.#ticking;
  }

  private async step(before: RolloutRecord): Promise<void> {
    const r = structuredClone(before);
    const result = advance(r, (id) => this.deviceView(id, r.service), this.deps.clock.now(), this.deps.gates, this.#offlineTrustedFrom);
    if (result.abort) {
      // What the engine saw (failed devices) goes in with the abort, unless the record changed
      // meanwhile (paused, superseded, aborted, new figures): then the next tick judges it again.
      let stale = false;
      await this.deps.rollouts.update(r.id, (stored) => {
        if (!isDeepStrictEqual(stored, before)) stale = true;
        else Object.assign(stored, r);
      });
      if (stale) return;
      this.deps.logger.warn({ rollout: r.id, service: r.service, reason: result.abort }, 'rollout aborted; rolling back');
      await this.rollBack(r, result.abort);
      return;
    }
    const { updatedAt: _a, ...now } = r;
    const { updatedAt: _b, ...then } = before;
    if (!isDeepStrictEqual(now, then) && !(await this.save(before, r, result.assign))) return;
    if (result.measure !== null) this.measure(r, result.measure);
  }

  /**
   * Starts measuring the figures a waiting gate asked for, unless a measurement of this rollout is
   * in flight or backing off after a failure; the next steps judge from the stored figures. The
   * cost left: each measurement re-reads the archive's metrics day files, per device of the batch
   * and per sampled old-revision device (at most BASELINE_SAMPLE), from when the batch was done;
   * every MEASURE_EVERY_MS while a gate waits, so a long wait on a large batch reads a lot.
   */
  private measure(r: RolloutRecord, batch: number): void {
    const meter = this.deps.measure;
    if (!meter || this.#closed || this.#measuring.has(r.id)) return;
    const started = this.deps.clock.now();
    const backoff = this.#measureBackoff.get(r.id);
    if (backoff && started < backoff.notBefore) return;
    const store = (figures: readonly RolloutGate[]) =>
      this.deps.rollouts.update(r.id, (stored) => {
        // Kept only for the same batch and soak of a running rollout: a resume moves the soak, and nothing measured before it decides.
        if (stored.batch !== batch || stored.phase !== 'running' || stored.soakUntil !== r.soakUntil) return;
        // A gate that could not be measured keeps its last figures.
        const kept = (stored.gates ?? []).filter((g) => !figures.some((f) => f.name === g.name));
        stored.gates = ROLLOUT_GATE_NAMES.flatMap((name) => [...figures, ...kept].filter((g) => g.name === name));
      });
    const run = async () => {
      try {
        const figures = await meter(r, started).catch(async (err: unknown) => {
          if (err instanceof GateMeasureError && err.figures.length) await store(err.figures);
          throw err;
        });
        await store(figures);
        this.#measureBackoff.delete(r.id);
        this.deps.logger.debug({ rollout: r.id, batch, gates: figures }, 'rollout gates measured');
      } catch (err) {
        const failures = (backoff?.failures ?? 0) + 1;
        const wait = Math.min(MEASURE_EVERY_MS * 2 ** (failures - 1), MEASURE_BACKOFF_MAX_MS);
        this.#measureBackoff.set(r.id, { failures, notBefore: this.deps.clock.now() + wait });
        this.deps.logger.warn({ err, rollout: r.id, batch, failures, retryInMs: wait }, 'rollout gate measurement failed');
      } finally {
        this.#measuring.delete(r.id);
      }
    };
    this.#measuring.set(r.id, run());
  }

  /** Stores a step's changes and makes what follows from them; false when the step was stale. */
  private async save(before: RolloutRecord, r: RolloutRecord, assign: ReadonlyMap<string, number | null>): Promise<boolean> {
    const completed = COMPLETED_ROLLOUT_PHASES.includes(r.phase);
    let stale = false;
    await this.deps.rollouts.update(r.id, (stored, d) => {
      // Paused, aborted or deleted with its service meanwhile: this step was computed from an old record.
      if (!isDeepStrictEqual(stored, before)) {
        stale = true;
        return;
      }
      Object.assign(stored, r);
      for (const [id, revision] of assign) d.assignments[id] = revision;
      if (d.rollout.id === r.id) d.rollout.phase = r.phase;
      if (completed) this.settle(r, d);
    });
    if (stale) return false;
    if (r.kind === 'rollback' && r.rollbackOf !== null) await this.markRolledBack(r);
    // A new stable revision reaches every device not moved by the rollout (enrolled since, relabelled).
    if (completed) await this.deps.desired.sync();
    else if (assign.size) await this.deps.desired.sync([...assign.keys()]);
    if (r.phase === 'succeeded') this.deps.logger.info({ rollout: r.id, service: r.service, revision: r.revision, kind: r.kind }, 'rollout succeeded');
    if (r.phase === 'completed-with-failures') {
      const failed = Object.keys(r.devices).filter((id) => r.devices[id]!.state === 'failed').sort();
      this.deps.logger.warn({ rollout: r.id, service: r.service, revision: r.revision, kind: r.kind, failed: namesOf(failed) }, 'rollout completed with failed devices');
    }
    return true;
  }

  /** Devices back on their old revision show as rolled back in the rollout that failed too. */
  private async markRolledBack(rollback: RolloutRecord): Promise<void> {
    const back = Object.entries(rollback.devices).filter(([, d]) => d.state === 'healthy').map(([id]) => id);
    const original = await this.deps.rollouts.get(rollback.rollbackOf!);
    if (!original || back.every((id) => original.devices[id]?.state === 'rolled-back')) return;
    await this.deps.rollouts.update(original.id, (o) => {
      for (const id of back) if (o.devices[id]) o.devices[id].state = 'rolled-back';
    });
  }

  /** A finished rollout's revision is what its devices (and any device not moved since) run. */
  private settle(r: RolloutRecord, d: DeploymentRecord): void {
    if (r.kind === 'rollback') {
      for (const [id, device] of Object.entries(r.devices)) if (d.assignments[id] === device.to && device.to === d.stableRevision) delete d.assignments[id];
    } else {
      d.stableRevision = r.revision;
      for (const [id, revision] of Object.entries(d.assignments)) if (revision === r.revision) delete d.assignments[id];
    }
    // Nothing holds a device outside the target once no rollout runs: a pin left there would
    // come back to life if the device were relabelled into the target later.
    this.unpin(d, { outside: true });
  }

  /**
   * Drops the assignments that give a device what it gets without one (the stable revision inside
   * the target, nothing outside it), and with `outside` every assignment outside the target and
   * every null one inside it.
   */
  private unpin(d: DeploymentRecord, opts: { outside: boolean }): void {
    for (const [id, revision] of Object.entries(d.assignments)) {
      let inside: boolean;
      try {
        inside = matchesLabels(this.deps.devices.get(id).labels, d.target);
      } catch {
        continue;
      }
      // Once settled (`outside`), a device inside the target gets the stable revision: a null pin there
      // is one relabelled in while a retarget had planned it out.
      if (inside ? revision === d.stableRevision || (opts.outside && revision === null) : opts.outside || revision === null) delete d.assignments[id];
    }
  }

  /**
   * Marks `r` aborted and, in the same write, starts the rollback of the devices it moved. Called
   * from inside a tick too, so it must not wait for one: the next tick moves the devices.
   */
  private async rollBack(r: RolloutRecord, reason: string): Promise<void> {
    const now = this.now();
    const moved = Object.entries(r.devices).filter(([, d]) => d.state !== 'waiting');
    const devices: RolloutRecord['devices'] = {};
    for (const [id, d] of moved) devices[id] = { batch: 0, from: d.to, to: d.from, state: 'waiting', movedAt: null, deadline: null, doneAt: null, error: null };
    // A rollback is not gated: it restores what ran before.
    const { gates: _gates, ...options } = r.options;
    const rollback: Omit<RolloutRecord, 'id'> = {
      service: r.service,
      kind: 'rollback',
      revision: r.fromRevision,
      fromRevision: r.revision,
      strategy: 'all-at-once',
      options: { ...options, maxUnavailable: null, offlineWait: '0s' },
      phase: moved.length ? 'running' : 'succeeded',
      reason: `rollback of rollout ${r.id}: ${reason}`,
      batchCount: moved.length ? 1 : 0,
      batch: 0,
      soakUntil: null,
      rolledBackBy: null,
      rollbackOf: r.id,
      devices,
      createdAt: now,
      updatedAt: now,
      finishedAt: moved.length ? null : now,
      createdBy: null,
    };
    const started = await this.deps.rollouts.start(
      rollback,
      {
        update: (d, id) => {
          d.rollout = summary({ ...rollback, id });
          // The devices not moved yet stay where they were, under the old target.
          if (r.target) {
            d.target = r.target.from;
            this.unpin(d, { outside: false });
          }
        },
      },
      {
        id: r.id,
        change: (stored, id) => {
          // Superseded or aborted by someone else meanwhile: a second rollback would leave two rollouts active.
          if (stored.phase !== 'running' && stored.phase !== 'paused') throw conflict(`rollout ${r.id} is ${stored.phase}: only a running or paused rollout can be aborted`);
          stored.phase = 'aborted';
          stored.reason = reason;
          stored.rolledBackBy = id;
          stored.finishedAt = now;
          stored.updatedAt = now;
        },
      },
    );
    this.deps.logger.warn({ rollout: r.id, rollback: started.rollout.id, devices: moved.length, reason }, 'rolling back');
  }
}
