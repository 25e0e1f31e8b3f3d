/**
 * The simulated reconcile loop on a manual clock: the reports it makes are the agent's, in the
 * agent's order, and failures, retries and abandoned rollouts behave as the agent's do.
 */
import test from 'ava';
import { ErrorCodes } from '../../shared/errors.js';
import type { DesiredState, ReportedState } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';
import type { FailureRates, Timing } from '../../bench/simulator/options.js';
import { Scheduler } from '../../bench/simulator/scheduler.js';
import { SimReconciler } from '../../bench/simulator/sim-reconciler.js';
import { SimRuntime } from '../../bench/simulator/sim-runtime.js';

const image = (d: string) => `127.0.0.1:5000/sim/x@sha256:${d.repeat(64)}`;
const limits = { maxConcurrent: 1, maxQueue: 10, memoryBytes: null, cpus: null };
const desiredState = (generation: number, revision: number, img: string): DesiredState => ({
  v: 1,
  epoch: 'e1',
  generation,
  services: [{ name: 'x', revision, image: img, limits, keyHash: 'a'.repeat(64), models: [] }],
});

function harness(timing: (revision: number) => Timing, failures: (revision: number) => FailureRates = () => ({})) {
  const clock = new ManualClock(1_000_000);
  const scheduler = new Scheduler(clock);
  let desired: DesiredState | null = null;
  const reports: ReportedState[] = [];
  const running: number[] = [];
  const runtime = new SimRuntime({
    index: 0,
    deviceId: 'sim-0',
    platform: 'linux/amd64',
    scheduler,
    seed: 1,
    timing: (ctx) => timing(ctx.revision),
    failures: (ctx) => failures(ctx.revision),
    stickyFailures: true,
    pullBytes: 1000,
  });
  const reconciler = new SimReconciler({
    deviceId: 'sim-0',
    runtime,
    desired: () => desired,
    report: (s) => reports.push(structuredClone(s)),
    onRunning: (s) => running.push(s.revision),
    onFailed: () => undefined,
    scheduler,
    clock,
    retry: { initialMs: 1000, maxMs: 1000, factor: 2 },
    resyncMs: 30_000,
    seed: 1,
  });
  return {
    reports,
    running,
    reconciler,
    offer(state: DesiredState) {
      desired = state;
      reconciler.trigger();
    },
    /** Moves the clock 10 ms at a time, letting the loop's promises settle in between. */
    async advance(ms: number) {
      for (let t = 0; t < ms; t += 10) {
        clock.advance(10);
        await new Promise((r) => setImmediate(r));
      }
    },
  };
}

/** `phase:service phase` of each report, with `+` for pull progress. */
const shape = (reports: ReportedState[]) =>
  reports.map((r) => `${r.phase}@${r.observedGeneration}:${r.services.map((s) => `${s.phase}${s.progress && s.progress.current > 0 ? '+' : ''}`).join(',')}`);

test('a rollout reports as the agent does: idle before any target, then reconciling, pulling with progress at most once a second, starting, converged', async (t) => {
  const h = harness(() => ({ pullMs: 2500, startMs: 100, healthMs: 200 }));
  h.reconciler.trigger();
  await h.advance(10);
  h.offer(desiredState(1, 1, image('1')));
  await h.advance(3000);
  t.deepEqual(shape(h.reports), [
    'idle@0:',
    'reconciling@1:',
    'reconciling@1:pulling',
    'reconciling@1:pulling+',
    'reconciling@1:pulling+',
    'reconciling@1:starting',
    'converged@1:running',
  ]);
  t.like(h.reports.at(-1)!.services[0], { revision: 1, servingRevision: 1, progress: null, error: null });
  t.deepEqual(h.running, [1]);
  await h.reconciler.close();
});

test('a failed health check keeps the previous revision serving and is retried with backoff, without pulling again', async (t) => {
  const h = harness(() => ({ pullMs: 100, startMs: 100, healthMs: 100 }), (revision) => (revision === 2 ? { health: 1 } : {}));
  h.offer(desiredState(1, 1, image('1')));
  await h.advance(500);
  h.reports.length = 0;
  h.offer(desiredState(2, 2, image('2')));
  await h.advance(500);
  t.deepEqual(shape(h.reports), ['reconciling@2:running', 'reconciling@2:pulling', 'reconciling@2:starting', 'failed@2:failed']);
  t.like(h.reports.at(-1)!.services[0], { revision: 2, servingRevision: 1, error: { code: ErrorCodes.AGENT_HEALTH_FAILED } });
  h.reports.length = 0;
  await h.advance(1500);
  t.deepEqual(shape(h.reports), ['reconciling@2:failed', 'reconciling@2:starting', 'failed@2:failed'], 'the retry starts again from the image it has');
  t.deepEqual(h.running, [1]);
  await h.reconciler.close();
});

test('a newer desired state abandons a pull in progress, as the agent does', async (t) => {
  const h = harness((revision) => ({ pullMs: revision === 2 ? 60_000 : 100, startMs: 100, healthMs: 100 }));
  h.offer(desiredState(1, 1, image('1')));
  await h.advance(500);
  h.offer(desiredState(2, 2, image('2')));
  await h.advance(2000);
  h.reports.length = 0;
  h.offer(desiredState(3, 3, image('3')));
  await h.advance(500);
  // The abandoned pass ends without a verdict on generation 2: the next reports are generation 3's.
  t.deepEqual(shape(h.reports), ['reconciling@3:pulling+', 'reconciling@3:pulling', 'reconciling@3:starting', 'converged@3:running']);
  t.deepEqual(h.running, [1, 3]);
  await h.reconciler.close();
});
