/**
 * The rollout state machine, as pure functions of a rollout record, what its devices report, and
 * the time: which devices to move next, when a batch is done, when to soak, when the failures cross
 * the abort threshold, and whether it ends succeeded or completed with failures. A device that
 * reports a failure is retried by its agent: it fails for the rollout only when rejected or at its
 * deadline, so a batch never closes on a device that may still get healthy. The controller
 * (rollout-controller.ts) stores the record, writes desired states and calls `advance` on every
 * tick; everything a crash can interrupt is in the record, so a restarted hub goes on where it was.
 */
import type { RolloutDevicePhase, RolloutRequest, RolloutStrategy } from '../../shared/api/rollouts.js';
import { DEFAULT_ROLLOUT } from '../../shared/api/rollouts.js';
import { parseDuration } from '../../shared/duration.js';
import type { ReportedService } from '../../shared/protocol.js';
import type { RolloutDeviceRecord, RolloutOptions, RolloutRecord } from '../store/store.js';
import { recordedGates } from './rollout-gates.js';

/** What the hub knows about one device, for one service. */
export interface DeviceView {
  online: boolean;
  /** The service as the device last reported it; null when it reports no such service. */
  service: Pick<ReportedService, 'revision' | 'phase' | 'servingRevision' | 'error'> | null;
}

/**
 * A check a batch must pass before the rollout goes on (after its soak): device health is built in;
 * the rollout's own gates (error rate, latency, model metric: rollout-gates.ts) judge from figures
 * stored in the record. `ok: null` waits; with `measure` it asks the caller for fresh figures.
 */
export interface HealthGate {
  readonly name: string;
  check(
    rollout: Readonly<RolloutRecord>,
    batch: number,
    now: number,
    /** When the batch's soak ended (or, without a soak, when the batch was done), paused time left out. */
    since: number,
    /** Before this the hub had just started: agents may not have delivered the telemetry they buffered. */
    trustedFrom: number,
  ): { ok: true } | { ok: false; reason: string } | { ok: null; measure: boolean };
}

export interface Advance {
  /** Devices whose desired revision of the service changes now (null: the service goes away). */
  assign: Map<string, number | null>;
  /** Set when the failures crossed the threshold or a gate failed: the caller aborts and rolls back. */
  abort: string | null;
  /** A gate waits for figures of this batch: the caller measures them and stores them in the record. */
  measure: number | null;
}

/** Defaults filled in and validated, as stored with the rollout. */
export function resolveOptions(request: RolloutRequest = {}): { strategy: RolloutStrategy; options: RolloutOptions } {
  const strategy = request.strategy ?? DEFAULT_ROLLOUT.strategy;
  return {
    strategy,
    options: {
      batchSize: request.batchSize ?? DEFAULT_ROLLOUT.batchSize,
      canary: request.canary ?? DEFAULT_ROLLOUT.canary,
      soak: request.soak ?? (strategy === 'canary' ? DEFAULT_ROLLOUT.canarySoak : DEFAULT_ROLLOUT.batchesSoak),
      maxUnavailable: request.maxUnavailable ?? null,
      deviceTimeout: request.deviceTimeout ?? DEFAULT_ROLLOUT.deviceTimeout,
      // All at once moves every device before anything is learnt: aborting it would only undo it all.
      maxFailures: request.maxFailures ?? (strategy === 'all-at-once' ? DEFAULT_ROLLOUT.allAtOnceMaxFailures : DEFAULT_ROLLOUT.maxFailures),
      offlineWait: request.offlineWait ?? DEFAULT_ROLLOUT.offlineWait,
      ...(request.gates ? { gates: { ...request.gates, minRequests: request.gates.minRequests ?? DEFAULT_ROLLOUT.gateMinRequests } } : {}),
    },
  };
}

/** `3` → 3 devices; `25%` → a quarter of `total`, rounded up. */
export function shareOf(share: string, total: number): number {
  if (!share.endsWith('%')) return Number(share);
  return Math.ceil((Number(share.slice(0, -1)) / 100) * total - 1e-9);
}

/**
 * Devices in order (by `rank`, then by id, so a plan is reproducible), cut into the strategy's
 * batches.
 */
export function planBatches(deviceIds: readonly string[], strategy: RolloutStrategy, options: RolloutOptions, rank: (id: string) => number = () => 0): string[][] {
  const ids = [...deviceIds].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  if (ids.length === 0) return [];
  if (strategy === 'all-at-once') return [ids];
  const batches: string[][] = [];
  let rest = ids;
  if (strategy === 'canary') {
    const canary = Math.min(ids.length, Math.max(1, shareOf(options.canary, ids.length)));
    batches.push(ids.slice(0, canary));
    rest = ids.slice(canary);
  }
  const size = Math.max(1, shareOf(options.batchSize, ids.length));
  for (let i = 0; i < rest.length; i += size) batches.push(rest.slice(i, i + size));
  return batches;
}

function reached(to: number | null, v: DeviceView): boolean {
  if (to === null) return v.service === null;
  return v.service?.revision === to && v.service.phase === 'running' && v.service.servingRevision === to;
}

/**
 * A failure the device reports for the revision: `final` when its agent gave up on it (rejected);
 * a plain `failed` is retried by the agent with backoff and may still get healthy.
 */
function failureOn(to: number | null, v: DeviceView): { error: string; final: boolean } | null {
  if (to === null || v.service?.revision !== to) return null;
  if (v.service.phase !== 'failed' && v.service.phase !== 'rejected') return null;
  return { error: v.service.error ? `${v.service.error.code}: ${v.service.error.message}` : `reported ${v.service.phase}`, final: v.service.phase === 'rejected' };
}

const iso = (ms: number) => new Date(ms).toISOString();
const ms = (iso: string) => Date.parse(iso);

const NAMED = 10;
/** Device ids for a message: the first few, and how many more (a fleet's worth would swamp it). */
export function namesOf(ids: readonly string[]): string {
  return ids.length > NAMED ? `${ids.slice(0, NAMED).join(', ')} and ${ids.length - NAMED} more` : ids.join(', ');
}

/** The phase shown for a device: what it does now, from its record and its latest report. */
export function devicePhase(d: RolloutDeviceRecord, v: DeviceView, rollback: boolean): RolloutDevicePhase {
  if (d.state === 'healthy') return rollback ? 'rolled-back' : 'healthy';
  if (d.state === 'rolled-back' || d.state === 'failed') return d.state;
  if (d.state === 'waiting') return 'pending';
  if (!v.online) return 'offline';
  if (d.error !== null) return 'retrying';
  if (d.to !== null && v.service?.revision === d.to && (v.service.phase === 'pulling' || v.service.phase === 'starting' || v.service.phase === 'running')) {
    return v.service.phase === 'running' ? 'starting' : v.service.phase;
  }
  return 'pending';
}

/** When the last device of a batch became healthy or failed (one it went on without, offline: when it was moved). */
function batchDoneAt(r: RolloutRecord, inBatch: readonly string[]): number {
  return Math.max(...inBatch.map((id) => ms(r.devices[id]!.doneAt ?? r.devices[id]!.movedAt ?? r.createdAt)));
}

/** A device counts as done for progress once it is healthy, failed or rolled back. */
export function isSettled(d: RolloutDeviceRecord): boolean {
  return d.state === 'healthy' || d.state === 'failed' || d.state === 'rolled-back';
}

/** Whether the current batch soaks once done: with gates of its own the last batch soaks too (they watch it like the others); a canary soaks once. */
function soaks(r: Readonly<RolloutRecord>): boolean {
  const last = r.batch === r.batchCount - 1;
  return parseDuration(r.options.soak) > 0 && (!last || r.options.gates !== undefined) && (r.strategy !== 'canary' || r.batch === 0) && r.kind !== 'rollback';
}

/**
 * Resumes a paused rollout at `now`. The time it was paused (from `updatedAt`, which a paused
 * rollout's steps leave as the pause set it) does not count: the soak, and the gates' wait up to
 * the device timeout, move forward by it (a batch done while paused is judged from `now`). Nothing
 * was measured while paused, so the batch's stored figures no longer decide: they wait for fresh ones.
 */
export function resume(r: RolloutRecord, now: number): void {
  const pausedFor = Math.max(0, now - ms(r.updatedAt));
  const inBatch = Object.values(r.devices).filter((d) => d.batch === r.batch);
  if (r.soakUntil !== null) {
    r.soakUntil = iso(ms(r.soakUntil) + pausedFor);
  } else if (r.options.gates !== undefined && r.kind !== 'rollback' && !soaks(r) && inBatch.length && inBatch.every(isSettled)) {
    // Judged from when it was done (no soak): the gates' wait starts over, less what it had waited before the pause.
    const doneAt = Math.max(...inBatch.map((d) => ms(d.doneAt ?? d.movedAt ?? r.createdAt)));
    r.soakUntil = iso(doneAt + Math.min(pausedFor, now - doneAt));
  }
  r.gates = r.gates?.map((g) => (g.batch === r.batch ? { ...g, ok: null } : g));
  r.phase = 'running';
}

/**
 * One step: updates the record in place from what devices report, moves the next devices, ends
 * batches (and soaks), and finishes the rollout. Paused rollouts still watch the devices already
 * moving (they count as failures or successes) but move no new ones.
 */
export function advance(
  r: RolloutRecord,
  view: (deviceId: string) => DeviceView,
  now: number,
  gates: readonly HealthGate[] = [],
  /** Before this, "offline" may only mean "not reconnected yet" (the hub just started): it holds batches. */
  offlineTrustedFrom = 0,
): Advance {
  const out: Advance = { assign: new Map(), abort: null, measure: null };
  if (r.phase !== 'running' && r.phase !== 'paused') return out;
  const deviceTimeout = parseDuration(r.options.deviceTimeout);
  const offlineWait = parseDuration(r.options.offlineWait);
  const ids = Object.keys(r.devices).sort();

  for (const id of ids) {
    const d = r.devices[id]!;
    if (d.state !== 'moving') continue;
    const v = view(id);
    // The timeout counts while the device is online: an offline device is pending, not failing.
    if (v.online && d.deadline === null) d.deadline = iso(now + deviceTimeout);
    const failure = failureOn(d.to, v);
    if (reached(d.to, v)) {
      d.state = 'healthy';
      d.error = null;
      d.doneAt = iso(now);
    } else if (failure?.final) {
      d.state = 'failed';
      d.error = failure.error;
      d.doneAt = iso(now);
    } else {
      // Kept while the agent retries: it is what the device shows, and why it failed at its deadline.
      if (failure) d.error = failure.error;
      if (v.online && d.deadline !== null && now > ms(d.deadline)) {
        d.state = 'failed';
        d.error = `not healthy within ${r.options.deviceTimeout}${d.error === null ? '' : ` (last: ${d.error})`}`;
        d.doneAt = iso(now);
      }
    }
  }

  if (r.kind !== 'rollback') {
    const failed = ids.filter((id) => r.devices[id]!.state === 'failed');
    const allowed = shareOf(r.options.maxFailures, ids.length);
    if (failed.length > allowed) {
      const first = r.devices[failed[0]!]!;
      out.abort = `${failed.length} of ${ids.length} devices failed (the rollout tolerates ${allowed}); first: ${failed[0]}: ${first.error}`;
      return out;
    }
  }
  if (r.phase === 'paused') return out;

  const maxUnavailable = r.options.maxUnavailable === null ? Number.POSITIVE_INFINITY : Math.max(1, shareOf(r.options.maxUnavailable, ids.length));
  for (;;) {
    if (r.batch >= r.batchCount) break;
    const inBatch = ids.filter((id) => r.devices[id]!.batch === r.batch);
    // Within the batch: devices a past batch left offline do not hold up this one.
    let moving = inBatch.filter((id) => r.devices[id]!.state === 'moving').length;
    for (const id of inBatch) {
      const d = r.devices[id]!;
      if (d.state !== 'waiting' || moving >= maxUnavailable) continue;
      d.state = 'moving';
      d.movedAt = iso(now);
      d.deadline = view(id).online ? iso(now + deviceTimeout) : null;
      out.assign.set(id, d.to);
      moving += 1;
    }
    const done = inBatch.every((id) => {
      const d = r.devices[id]!;
      if (isSettled(d)) return true;
      // An offline device holds the batch only for `offlineWait`; it converges when it is back.
      return d.state === 'moving' && !view(id).online && now >= offlineTrustedFrom && now - ms(d.movedAt!) >= offlineWait;
    });
    if (!done) break;

    const checks = [...gates, ...recordedGates(r)];
    if (soaks(r)) {
      if (r.soakUntil === null) r.soakUntil = iso(now + parseDuration(r.options.soak));
      if (now < ms(r.soakUntil)) break;
    }
    const since = r.soakUntil !== null ? ms(r.soakUntil) : batchDoneAt(r, inBatch);
    let waiting = false;
    for (const gate of checks) {
      const verdict = gate.check(r, r.batch, now, since, offlineTrustedFrom);
      if (verdict.ok === false) {
        out.abort = `gate ${gate.name} failed after batch ${r.batch + 1}: ${verdict.reason}`;
        return out;
      }
      if (verdict.ok === null) {
        waiting = true;
        if (verdict.measure) out.measure = r.batch;
      }
    }
    if (waiting) break;
    r.soakUntil = null;
    r.batch += 1;
  }
  if (r.batch >= r.batchCount) {
    const failed = ids.filter((id) => r.devices[id]!.state === 'failed');
    r.phase = failed.length ? 'completed-with-failures' : 'succeeded';
    // A rollback keeps its reason (why it exists); its failed devices are in its device list.
    if (failed.length && r.kind !== 'rollback') r.reason = `${failed.length} of ${ids.length} devices failed (the rollout tolerates ${shareOf(r.options.maxFailures, ids.length)}): ${namesOf(failed)}`;
    r.finishedAt = iso(now);
  }
  r.updatedAt = iso(now);
  return out;
}
