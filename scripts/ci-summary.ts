/**
 * The closing line of a CI run, `tests: N passed, M failed`, from what ava printed. ava's own
 * closing lines leave the passes out as soon as something failed, so both numbers are counted from
 * its per-test lines instead: `✔ title` is a pass (`✔ [expected fail]` is a known failure, which ava
 * does not count as passed either), `✘ …` a failed test, a test file that crashed or a timeout.
 *
 * Usage: node --import=tsx scripts/ci-summary.ts LOG EXIT_STATUS
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const ANSI = /\u001b\[[0-9;]*m/g;

export function ciSummary(output: string, exitStatus: number): { passed: number; failed: number } {
  let passed = 0;
  let failed = 0;
  for (const raw of output.split('\n')) {
    const line = raw.replace(ANSI, '');
    if (/^ {2}✔ (?!\[expected fail\])/.test(line)) passed += 1;
    else if (/^ {2}✘ /.test(line)) failed += 1;
  }
  // Failed before or outside ava (build, type check): the run failed all the same.
  if (exitStatus !== 0 && failed === 0) failed = 1;
  return { passed, failed };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [log, status] = process.argv.slice(2);
  const { passed, failed } = ciSummary(readFileSync(log!, 'utf8'), Number(status));
  console.log(`tests: ${passed} passed, ${failed} failed`);
}
