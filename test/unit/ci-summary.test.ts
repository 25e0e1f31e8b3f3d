/** `.ci/run`'s closing line (scripts/ci-summary.ts), from real ava 6 output (abridged). */
import test from 'ava';
import { ciSummary } from '../../scripts/ci-summary.js';

/** ava 6, all passed: its closing lines count the passes (known failures and skips apart). */
const PASSED = `
  ✔ a › p1
  ✔ a › p2
  - [skip] h › sk
  ✔ [expected fail] h › known
  ✔ h › ok
  ─

  3 tests passed
  1 known failure
  1 test skipped
`;

/** ava 6 with failures: its closing lines no longer count the passes. */
const FAILED = `
  - [skip] b › sk
  - [todo] b › td
  ✘ [fail]: b › f1 Test failed via \`t.fail()\`
  ✔ b › p3
  ✔ [expected fail] b › known
  ✔ a › p1
  ✔ a › p2
  ✔ c › p1
  ✘ [fail]: c › f1 Test failed via \`t.fail()\`
  ✘ [fail]: c › f2 Test failed via \`t.fail()\`
  ✔ d › ok
  ✔ d › ✔ fake
  ✘ [fail]: d › slow Test timeout exceeded
  ✔ [expected fail] e › known
  ✔ e › ok
  ✘ [unexpected pass]: e › unexpected pass Test was expected to fail, but succeeded, you should stop marking the test as failing

  Uncaught exception in f.test.mjs

  f.test.mjs:3

   2: test('ok2', (t) => t.pass());
   3: throw new Error('boom at import');

  Error: boom at import

  › file://f.test.mjs:3:7

  ✘ f.test.mjs exited with a non-zero exit code: 1
  ✔ g › rej

  Unhandled rejection in g.test.mjs

  ✘ g.test.mjs exited with a non-zero exit code: 1
  ─

  c › f1

  c.test.mjs:3

   2: test('p1', (t) => t.pass());
   3: test('f1', (t) => t.fail());

  Test failed via \`t.fail()\`

  ─

  5 tests failed
  4 known failures
  2 tests skipped
  1 test todo
  1 unhandled rejection
  1 uncaught exception
`;

test('all passed: the passes, without known failures or skips, as ava counts them', (t) => {
  t.deepEqual(ciSummary(PASSED, 0), { passed: 3, failed: 0 });
});

test('something failed: the passes are still counted; failed tests, crashed files and timeouts are failures', (t) => {
  t.deepEqual(ciSummary(FAILED, 1), { passed: 8, failed: 7 });
});

test('colours do not hide a line', (t) => {
  t.deepEqual(ciSummary('  \u001b[32m✔\u001b[39m a › p1\n  \u001b[31m✘\u001b[39m \u001b[31m[fail]: a › f1\u001b[39m\n', 1), { passed: 1, failed: 1 });
});

test('a run that failed before any test (build, type check) counts one failure', (t) => {
  t.deepEqual(ciSummary('hub/main.ts(1,1): error TS2304: Cannot find name x.\n', 2), { passed: 0, failed: 1 });
});
