/** Build progress from buildx's plain output, and the duration parser used by the builder's timeouts. */
import test from 'ava';
import { BuildProgressTracker } from '../../hub/builds/build-progress.js';
import { parseDuration } from '../../shared/duration.js';

test('steps are counted per platform from [platform k/n] and finished by DONE or CACHED', (t) => {
  const p = new BuildProgressTracker();
  t.deepEqual(p.snapshot(), { stepsDone: 0, stepsTotal: 0, current: 'queued' });
  p.phase('building and pushing r');
  for (const line of [
    '#1 [internal] load build definition from Dockerfile',
    '#1 DONE 0.0s',
    '#5 [linux/amd64 1/3] FROM base',
    '#6 [linux/arm64 1/3] FROM base',
    '#5 DONE 0.1s',
    '#6 CACHED',
    '#7 [linux/amd64 2/3] COPY runtime /opt/edgeml/runtime',
    '#7 0.512 some output',
  ]) {
    p.line(line);
  }
  t.deepEqual(p.snapshot(), { stepsDone: 2, stepsTotal: 6, current: '[linux/amd64] COPY runtime /opt/edgeml/runtime' });
  p.line('#7 DONE 0.3s');
  p.line('#7 DONE 0.3s');
  t.is(p.snapshot().stepsDone, 3, 'a vertex counts once');
  p.phase('testing linux/arm64');
  t.is(p.snapshot().current, 'testing linux/arm64');
});

test('a single-platform build ([k/n] without a platform) is counted too', (t) => {
  const p = new BuildProgressTracker();
  p.line('#4 [2/2] RUN true');
  p.line('#4 DONE 0.2s');
  t.deepEqual(p.snapshot(), { stepsDone: 1, stepsTotal: 2, current: 'RUN true' });
});

test('parseDuration reads ms, s, m, h, d and fractions; refuses anything else', (t) => {
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('10s'), 10_000);
  t.is(parseDuration('1.5m'), 90_000);
  t.is(parseDuration('2h'), 7_200_000);
  t.is(parseDuration('1d'), 86_400_000);
  for (const bad of ['', '10', 's', '-1s', '1 s', '1w']) t.throws(() => parseDuration(bad), { instanceOf: RangeError }, bad);
});
