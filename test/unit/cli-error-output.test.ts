/** cli/error-output.ts: one line per error, JSON under --json, a stack only for internal errors with --debug. */
import test from 'ava';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { renderError, renderUsageError, wantsDebug, wantsJson } from '../../cli/error-output.js';

const expected = new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, 'cannot reach the hub at http://127.0.0.1:1: ECONNREFUSED');

test('an expected error is one text line with its code', (t) => {
  t.is(renderError(expected, { json: false, debug: true }), 'edgeml: cannot reach the hub at http://127.0.0.1:1: ECONNREFUSED [CLI_E_HUB_UNREACHABLE]\n');
});

test('under --json an error is one JSON line {"error":{"code","message"}}', (t) => {
  const text = renderError(expected, { json: true, debug: false });
  t.is(text.split('\n').length, 2);
  t.deepEqual(JSON.parse(text), { error: { code: 'CLI_E_HUB_UNREACHABLE', message: expected.message } });
});

test('an internal error hints at --debug, and shows its stack only with it', (t) => {
  const bug = new TypeError('x is undefined');
  const quiet = renderError(bug, { json: false, debug: false });
  t.is(quiet, `edgeml: internal error: x is undefined (run with --debug or EDGEML_DEBUG=1 for the stack trace) [${ErrorCodes.INTERNAL}]\n`);
  const loud = renderError(bug, { json: false, debug: true });
  t.true(loud.includes('at '), 'the stack is printed');
  t.truthy((JSON.parse(renderError(bug, { json: true, debug: true })) as { error: { stack?: string } }).error.stack);
});

test("commander's usage message becomes one JSON line under --json", (t) => {
  t.is(renderUsageError("error: unknown command 'lst'\n(Did you mean list?)\n", false), "error: unknown command 'lst'\n(Did you mean list?)\n");
  t.deepEqual(JSON.parse(renderUsageError("error: unknown command 'lst'\n(Did you mean list?)\n", true)), {
    error: { code: ErrorCodes.CLI_INPUT_INVALID, message: "unknown command 'lst' (Did you mean list?)" },
  });
});

test('--json and --debug count before a `--` only; EDGEML_DEBUG=1 also asks for the stack', (t) => {
  t.true(wantsJson(['model', 'list', '--json']));
  t.false(wantsJson(['score', 'svc', '--', '--json']));
  t.true(wantsDebug(['model', 'list'], { EDGEML_DEBUG: '1' }));
  t.false(wantsDebug(['model', 'list'], {}));
});
