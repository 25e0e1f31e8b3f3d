/**
 * The fleet simulator's engine under the agent's real reconcile loop, on a manual clock: the drawn
 * durations are what the loop waits, the injected failures are what it reports, with the agent's
 * codes, and every timer of the loop is an entry on the fleet's scheduler (one clock timer).
 */
import test from 'ava';
import { deviceReconciler } from '../../bench/simulator/device-reconciler.js';
import type { FailureRates, RevisionContext, Timing } from '../../bench/simulator/options.js';
import { Scheduler } from '../../bench/simulator/scheduler.js';
import { SimContainerRuntime } from '../../bench/simulator/sim-runtime.js';
import { ErrorCodes } from '../../shared/errors.js';
import type { DesiredState, ReportedState } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';

const image = (d: string) => `127.0.0.1:5000/sim/x@sha256:${d.repeat(64)}`;
const limits = { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null };
const desiredState = (generation: number, revision: number, img: string): DesiredState => ({
  v: 1,
  epoch: 'e1',
  generation,
  services: [{ name: 'x', revision, image: img, limits, keyHash: 'a'.repeat(64), models: [] }],
});

async function harness(timing: (revision: number) => Timing, failures: (revision: number) => FailureRates = () => ({})) {
  const clock = new ManualClock(1_000_000);
  const scheduler = new Scheduler(clock);
  let desired: DesiredState | null = null;
  const reports: Array<ReportedState & { at: number }> = [];
  const failed: RevisionContext[] = [];
  const runtime = new SimContainerRuntime({
    index: 0,
    deviceId: 'sim-0',
    platform: 'linux/amd64',
    scheduler,
    seed: 1,
    timing: (ctx) => timing(ctx.revision),
    failures: (ctx) => failures(ctx.revision),
    stickyFailures: true,
    pullBytes: 1000,
    desired: () => desired,
    onFailure: (ctx) => failed.push(ctx),
  });
  const reconciler = await deviceReconciler({
    deviceId: 'sim-0',
    platform: 'linux/amd64',
    runtime,
    desired: () => desired,
    report: async (s) => void reports.push({ ...structuredClone(s), at: clock.now() }),
    scheduler,
    backoff: { initialMs: 1000, maxMs: 1000, factor: 2 },
    resyncMs: 30_000,
  });
  return {
    clock,
    reports,
    failed,
    runtime,
    reconciler,
    offer(state: DesiredState) {
      desired = state;
      reconciler.trigger();
    },
    /** Moves the clock 10 ms at a time, letting the loop's promises settle before each move and after the last. */
    async advance(ms: number) {
      const settle = () => new Promise((r) => setImmediate(r));
      for (let t = 0; t < ms; t += 10) {
        await settle();
        clock.advance(10);
      }
      await settle();
    },
    /** Advances 10 ms at a time until `done` holds, at most `ms`; false if it never did. */
    async advanceUntil(done: () => boolean, ms: number): Promise<boolean> {
      for (let t = 0; t < ms && !done(); t += 10) await this.advance(10);
      return done();
    },
  };
}

/** `phase@generation:service phase` of each report, with `+` for pull progress. */
const shape = (r: ReportedState) => `${r.phase}@${r.observedGeneration}:${r.services.map((s) => `${s.phase}${s.progress && s.progress.current > 0 ? '+' : ''}`).join(',')}`;
const shapes = (reports: ReportedState[]) => reports.map(shape);

// The order and number of the loop's reports are the agent's (test/unit/reconciler.test.ts); these
// tests hold what the simulation adds: its durations, its failures, and its timers.

test('a rollout takes the drawn pull, start and health times, with pull progress at most once a second; the loop keeps one clock timer', async (t) => {
  const h = await harness(() => ({ pullMs: 2500, startMs: 100, healthMs: 200 }));
  h.reconciler.trigger();
  await h.advance(10);
  t.deepEqual(shapes(h.reports), ['idle@0:']);
  const offeredAt = h.clock.now();
  h.offer(desiredState(1, 1, image('1')));
  await h.advance(3000);
  const progress = h.reports.filter((r) => shape(r) === 'reconciling@1:pulling+');
  t.deepEqual(progress.map((r) => r.at - offeredAt), [1000, 2000], 'progress at 1 s and 2 s of the 2.5 s pull');
  t.true(shapes(h.reports).includes('reconciling@1:starting'));
  const last = h.reports.at(-1)!;
  t.is(shape(last), 'converged@1:running');
  t.like(last.services[0], { revision: 1, servingRevision: 1, progress: null, error: null });
  t.is(last.at - offeredAt, 2500 + 100 + 200, 'pull, start and /health, nothing else');
  t.deepEqual(h.runtime.running().map((c) => c.revision), [1]);
  t.is(h.clock.pending(), 1, 'the resync is a scheduler entry, not a timer of its own');
  await h.reconciler.close();
});

test('a failed health check keeps the previous revision serving and is retried with backoff, without pulling again', async (t) => {
  const h = await harness(() => ({ pullMs: 100, startMs: 100, healthMs: 100 }), (revision) => (revision === 2 ? { health: 1 } : {}));
  h.offer(desiredState(1, 1, image('1')));
  await h.advance(500);
  h.offer(desiredState(2, 2, image('2')));
  await h.advance(500);
  t.is(shape(h.reports.at(-1)!), 'failed@2:failed');
  t.like(h.reports.at(-1)!.services[0], { revision: 2, servingRevision: 1, error: { code: ErrorCodes.AGENT_HEALTH_FAILED, message: '/health says failed: simulated health failure (fleet simulator)' } });
  h.reports.length = 0;
  // The backoff is 0.5 to 1 s; then a start and a health check of 100 ms each.
  t.true(await h.advanceUntil(() => h.failed.length === 2 && h.reports.at(-1) !== undefined && shape(h.reports.at(-1)!) === 'failed@2:failed', 3000), 'retried and failed again');
  t.false(shapes(h.reports).some((r) => r.includes('pulling')), 'the retry starts again from the image it has');
  t.true(shapes(h.reports).includes('reconciling@2:starting'));
  t.is(shape(h.reports.at(-1)!), 'failed@2:failed');
  t.deepEqual(h.failed.map((f) => f.revision), [2, 2]);
  t.deepEqual(h.runtime.running().map((c) => c.revision), [1], 'the failed containers are gone');
  await h.reconciler.close();
});

test('a failed pull reports the agent code, after some progress', async (t) => {
  const h = await harness(() => ({ pullMs: 3000, startMs: 100, healthMs: 100 }), () => ({ pull: 1 }));
  h.offer(desiredState(1, 1, image('1')));
  await h.advance(1600);
  t.true(shapes(h.reports).includes('reconciling@1:pulling+'), 'progress first');
  t.is(shape(h.reports.at(-1)!), 'failed@1:failed');
  t.like(h.reports.at(-1)!.services[0], { servingRevision: null, error: { code: ErrorCodes.AGENT_PULL_FAILED, message: `pulling ${image('1')} for linux/amd64 failed: simulated registry failure (fleet simulator)` } });
  t.is(h.failed.length, 1);
  await h.reconciler.close();
});

test('a newer desired state abandons a pull in progress, as the agent does, and it is no failure', async (t) => {
  const h = await harness((revision) => ({ pullMs: revision === 2 ? 60_000 : 100, startMs: 100, healthMs: 100 }));
  h.offer(desiredState(1, 1, image('1')));
  await h.advance(500);
  h.offer(desiredState(2, 2, image('2')));
  await h.advance(1500);
  h.reports.length = 0;
  const offeredAt = h.clock.now();
  h.offer(desiredState(3, 3, image('3')));
  await h.advance(500);
  t.false(h.reports.some((r) => r.observedGeneration === 2), 'no verdict on generation 2');
  t.is(shape(h.reports.at(-1)!), 'converged@3:running');
  t.is(h.reports.at(-1)!.at - offeredAt, 300, 'revision 3 at once, not after the 60 s pull');
  t.deepEqual(h.runtime.running().map((c) => c.revision), [3]);
  t.deepEqual(h.failed, []);
  await h.reconciler.close();
});
