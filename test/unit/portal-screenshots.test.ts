/**
 * The README shows a screenshot of each portal page: every picture it names is committed under
 * docs/, and every screenshot a portal test takes is shown there (a page added with its test but
 * without its picture fails here).
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const root = fileURLToPath(new URL('../../', import.meta.url));

test('the README shows each portal screenshot, and each is committed', async (t) => {
  const readme = await readFile(`${root}README.md`, 'utf8');
  const shown = new Set([...readme.matchAll(/docs\/portal-([a-z-]+)\.png/g)].map((m) => m[1]!));
  const committed = new Set((await readdir(`${root}docs`)).flatMap((f) => /^portal-([a-z-]+)\.png$/.exec(f)?.slice(1) ?? []));
  const tests = (await readdir(`${root}test/integration`)).filter((f) => f.endsWith('.test.ts'));
  const taken = new Set<string>();
  for (const file of tests) {
    const text = await readFile(`${root}test/integration/${file}`, 'utf8');
    for (const m of text.matchAll(/screenshot\(\w+, '([a-z-]+)'\)/g)) taken.add(m[1]!);
  }
  t.true(shown.size >= 6, `the README shows the portal's pages (${[...shown].join(', ')})`);
  t.deepEqual([...shown].filter((n) => !committed.has(n)), [], 'pictures the README shows but docs/ lacks');
  t.deepEqual([...taken].filter((n) => !shown.has(n)), [], 'screenshots the tests take but the README does not show');
});
