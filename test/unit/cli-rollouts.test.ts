/** `edgeml rollout status`: how a finished rollout reads, and why `--watch` exits 1. */
import test from 'ava';
import { renderRollout, rolloutFailure } from '../../cli/commands/rollouts.js';
import type { Rollout } from '../../shared/api/rollouts.js';

const AT = '2026-11-24T00:00:00.000Z';

function rollout(phase: Rollout['phase'], failed: string[], healthy: string[]): Rollout {
  const device = (id: string, p: 'healthy' | 'failed') => ({ id, batch: 0, phase: p, previousRevision: 1, movedAt: AT, doneAt: AT, error: p === 'failed' ? `not healthy within 10m (last: AGENT_E_HEALTH_FAILED: ${id} timed out)` : null });
  const devices = [...healthy.map((id) => device(id, 'healthy')), ...failed.map((id) => device(id, 'failed'))].sort((a, b) => a.id.localeCompare(b.id));
  return {
    id: 7, service: 'iris', kind: 'update', revision: 2, fromRevision: 1, strategy: 'all-at-once',
    options: { batchSize: '25%', canary: '10%', soak: '0s', maxUnavailable: null, deviceTimeout: '10m', maxFailures: '100%', offlineWait: '0s' },
    phase, reason: failed.length ? `${failed.length} of ${devices.length} devices failed (the rollout tolerates ${devices.length}): ${failed.join(', ')}` : null,
    batches: 1, batch: 1, soakUntil: null, rolledBackBy: null, rollbackOf: null,
    counts: { healthy: healthy.length, failed: failed.length }, progress: 1, devices, gates: [], createdAt: AT, updatedAt: AT, finishedAt: AT,
  };
}

test('a rollout that succeeded is no failure', (t) => {
  t.is(rolloutFailure(rollout('succeeded', [], ['d1', 'd2'])), null);
});

test('completed-with-failures is a failure that names each failed device and why', (t) => {
  const r = rollout('completed-with-failures', ['d2', 'd5'], ['d1', 'd3', 'd4', 'd6']);
  t.is(
    rolloutFailure(r),
    [
      'rollout 7 completed with failures: 2 of 6 devices failed',
      '  d2: not healthy within 10m (last: AGENT_E_HEALTH_FAILED: d2 timed out)',
      '  d5: not healthy within 10m (last: AGENT_E_HEALTH_FAILED: d5 timed out)',
    ].join('\n'),
  );
  t.regex(renderRollout(r), /^phase:\s+completed-with-failures$/m);
});

test('a fleet of failed devices is named up to ten, then counted', (t) => {
  const failed = Array.from({ length: 12 }, (_, i) => `d${String(i + 1).padStart(2, '0')}`);
  const lines = rolloutFailure(rollout('completed-with-failures', failed, []))!.split('\n');
  t.is(lines.length, 12);
  t.is(lines.at(-1), '  … and 2 more (edgeml rollout status 7)');
});

test('aborted and superseded say so, with the reason', (t) => {
  const r = { ...rollout('aborted', [], []), reason: '1 of 6 devices failed (the rollout tolerates 0); first: d1: …' };
  t.is(rolloutFailure(r), 'rollout 7 ended aborted: 1 of 6 devices failed (the rollout tolerates 0); first: d1: …');
  t.is(rolloutFailure({ ...r, phase: 'superseded', reason: null }), 'rollout 7 ended superseded');
});
