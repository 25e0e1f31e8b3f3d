/**
 * One-shot commands on the agent (agent/commands.ts).
 */
import test from 'ava';
import { runCommand, type CommandContext } from '../../agent/commands.js';
import { decodeMessage, encodeMessage } from '../../shared/protocol.js';

function context(values: { uptimeMs: number; invalidMessages: number; generation: number | null }): CommandContext {
  return {
    uptimeMs: () => values.uptimeMs,
    invalidMessages: () => values.invalidMessages,
    generation: () => values.generation,
  };
}

test('ping answers ok with uptime, invalid message count and generation from the context', (t) => {
  const ack = runCommand({ v: 1, id: 'cmd-42', name: 'ping' }, context({ uptimeMs: 12_345, invalidMessages: 7, generation: 3 }));
  t.deepEqual(ack, { v: 1, id: 'cmd-42', ok: true, result: { uptimeMs: 12_345, invalidMessages: 7, generation: 3 } });
});

test('ping reports a null generation when no desired state is known', (t) => {
  const ack = runCommand({ v: 1, id: 'c', name: 'ping' }, context({ uptimeMs: 0, invalidMessages: 0, generation: null }));
  t.deepEqual(ack.result, { uptimeMs: 0, invalidMessages: 0, generation: null });
  t.true(ack.ok);
  t.is(ack.error, undefined);
});

test('ping reads the context at call time', (t) => {
  const values = { uptimeMs: 1, invalidMessages: 0, generation: 1 as number | null };
  const ctx = context(values);
  t.like(runCommand({ v: 1, id: 'a', name: 'ping' }, ctx).result, { uptimeMs: 1, generation: 1 });
  values.uptimeMs = 5000;
  values.invalidMessages = 2;
  values.generation = 9;
  t.deepEqual(runCommand({ v: 1, id: 'b', name: 'ping' }, ctx).result, { uptimeMs: 5000, invalidMessages: 2, generation: 9 });
});

test('ping echoes the command id and ignores args', (t) => {
  const ack = runCommand({ v: 1, id: 'x'.repeat(128), name: 'ping', args: { anything: true } }, context({ uptimeMs: 1, invalidMessages: 0, generation: 0 }));
  t.is(ack.id, 'x'.repeat(128));
  t.true(ack.ok);
});

test('the ping ack is a valid cmd/ack message on the wire', (t) => {
  const ack = runCommand({ v: 1, id: 'cmd-1', name: 'ping' }, context({ uptimeMs: 99, invalidMessages: 1, generation: null }));
  t.deepEqual(decodeMessage('cmd/ack', encodeMessage('cmd/ack', ack)), { ok: true, value: ack });
});
