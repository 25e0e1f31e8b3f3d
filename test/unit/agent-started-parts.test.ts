/**
 * A start that fails half-way closes what it had started (agent/started-parts.ts), newest first,
 * and one part that fails to close does not keep the others open.
 */
import test from 'ava';
import { pino } from 'pino';
import { StartedParts } from '../../agent/started-parts.js';

test('every part started so far is closed, newest first, even when one of them fails to close', async (t) => {
  const closed: string[] = [];
  const started = new StartedParts();
  const part = (name: string, fails = false) => ({
    close: async () => {
      closed.push(name);
      if (fails) throw new Error(`${name} would not close`);
    },
  });
  const certificates = started.add(part('certificates'));
  t.truthy(certificates.close, 'the part is handed back');
  started.add(part('gateway', true));
  started.add(part('link'));
  await started.closeAll(pino({ level: 'silent' }));
  t.deepEqual(closed, ['link', 'gateway', 'certificates']);
  await started.closeAll(pino({ level: 'silent' }));
  t.is(closed.length, 3, 'closed once');
});
