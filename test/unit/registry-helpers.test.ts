/**
 * Small registry helpers: KEY=VALUE lists (hub/registry/key-values.ts), canonical JSON
 * (hub/registry/canonical-json.ts) and byte sizes (shared/size.ts).
 */
import test, { type ExecutionContext } from 'ava';
import { canonicalJson } from '../../hub/registry/canonical-json.js';
import { keyValues, numericKeyValues } from '../../hub/registry/key-values.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import { formatBytes, parseSize } from '../../shared/size.js';

function fails(t: ExecutionContext, fn: () => unknown, code: ErrorCode): string {
  const err = t.throws(fn, { instanceOf: EdgemlError });
  t.is(err?.code, code);
  return err?.message ?? '';
}

// --- keyValues / numericKeyValues ---

test('keyValues turns KEY=VALUE items into a record; no items is empty', (t) => {
  t.deepEqual(keyValues('tag', ['team=vision', 'stage=prod']), { team: 'vision', stage: 'prod' });
  t.deepEqual(keyValues('tag', undefined), {});
  t.deepEqual(keyValues('tag', []), {});
});

test('keyValues splits at the first "=", so values may contain "=" or be empty', (t) => {
  t.deepEqual(keyValues('tag', ['query=a=b=c', 'empty=']), { query: 'a=b=c', empty: '' });
});

test('keyValues refuses an item without "=" or with an empty key, naming the field (400)', (t) => {
  const noEq = t.throws(() => keyValues('tag', ['team']), { instanceOf: EdgemlError });
  t.is(noEq?.code, ErrorCodes.HUB_INVALID_REQUEST);
  t.is(noEq?.httpStatus, 400);
  t.is(noEq?.message, 'tag: "team" is not KEY=VALUE');

  t.is(fails(t, () => keyValues('label', ['=vision']), ErrorCodes.HUB_INVALID_REQUEST), 'label: "=vision" is not KEY=VALUE');
});

test('keyValues refuses a key given twice', (t) => {
  const message = fails(t, () => keyValues('tag', ['team=a', 'stage=x', 'team=b']), ErrorCodes.HUB_INVALID_REQUEST);
  t.is(message, 'tag: key "team" is given twice');
});

test('keyValues accepts keys that are Object.prototype member names', (t) => {
  t.deepEqual(keyValues('tag', ['constructor=x', 'toString=y']), { constructor: 'x', toString: 'y' });
});

test('numericKeyValues parses numbers', (t) => {
  t.deepEqual(numericKeyValues('metric', ['accuracy=0.93', 'loss=-1.5', 'n=1e3', 'f1=7']), { accuracy: 0.93, loss: -1.5, n: 1000, f1: 7 });
  t.deepEqual(numericKeyValues('metric', undefined), {});
});

test('numericKeyValues refuses a value that is not a finite number, naming field and key', (t) => {
  for (const item of ['accuracy=high', 'accuracy=', 'accuracy= ', 'accuracy=Infinity', 'accuracy=NaN']) {
    const message = fails(t, () => numericKeyValues('metric', [item]), ErrorCodes.HUB_INVALID_REQUEST);
    t.regex(message, /^metric: accuracy=.*: the value must be a number$/, item);
  }
});

test('numericKeyValues keeps the KEY=VALUE and duplicate checks', (t) => {
  t.is(fails(t, () => numericKeyValues('metric', ['accuracy']), ErrorCodes.HUB_INVALID_REQUEST), 'metric: "accuracy" is not KEY=VALUE');
  t.is(fails(t, () => numericKeyValues('metric', ['a=1', 'a=2']), ErrorCodes.HUB_INVALID_REQUEST), 'metric: key "a" is given twice');
});

// --- canonicalJson ---

test('canonicalJson sorts object keys at every depth and keeps array order', (t) => {
  const value = { b: 1, a: { d: [{ z: 1, y: 2 }, 3, 'x'], c: null }, aa: [3, 1, 2] };
  t.is(canonicalJson(value), '{"a":{"c":null,"d":[{"y":2,"z":1},3,"x"]},"aa":[3,1,2],"b":1}');
});

test('canonicalJson gives equal strings for equal content in any key order', (t) => {
  const one = { name: 'vision', env: { B: '2', A: '1' }, models: [{ version: 1, name: 'r' }] };
  const two = { models: [{ name: 'r', version: 1 }], env: { A: '1', B: '2' }, name: 'vision' };
  t.is(canonicalJson(one), canonicalJson(two));
  t.deepEqual(JSON.parse(canonicalJson(one)), one);
  // Array order is content: a reordered array is different.
  t.not(canonicalJson({ a: [1, 2] }), canonicalJson({ a: [2, 1] }));
});

test('canonicalJson of scalars is plain JSON', (t) => {
  t.is(canonicalJson('x'), '"x"');
  t.is(canonicalJson(3), '3');
  t.is(canonicalJson(null), 'null');
  t.is(canonicalJson([]), '[]');
  t.is(canonicalJson({}), '{}');
});

// --- parseSize / formatBytes ---

test('parseSize reads binary units, case-insensitive, with optional b / ib', (t) => {
  const cases: Array<[string, number]> = [
    ['512k', 512 * 1024],
    ['100m', 100 * 1024 ** 2],
    ['2g', 2 * 1024 ** 3],
    ['1.5k', 1536],
    ['10', 10],
    ['10b', 10],
    ['1KiB', 1024],
    ['1kb', 1024],
    ['2GB', 2 * 1024 ** 3],
    ['1T', 1024 ** 4],
    [' 4k ', 4096],
  ];
  for (const [text, bytes] of cases) t.is(parseSize(text), bytes, text);
});

test('parseSize rounds fractional bytes down', (t) => {
  t.is(parseSize('1.5'), 1);
  t.is(parseSize('0.001k'), 1);
});

test('parseSize refuses what is not a size with EDGEML_E_CONFIG_INVALID', (t) => {
  for (const text of ['abc', '-1', '1x', '', 'k', '1.5.2k', '1 k']) {
    const message = fails(t, () => parseSize(text), ErrorCodes.CONFIG_INVALID);
    t.true(message.includes(JSON.stringify(text)), message);
    t.true(message.includes('512k'), message);
  }
  t.is(ErrorCodes.CONFIG_INVALID, 'EDGEML_E_CONFIG_INVALID');
});

test('formatBytes shows bytes below 1 KB and one decimal above', (t) => {
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(1023), '1023 B');
  t.is(formatBytes(1024), '1.0 KB');
  t.is(formatBytes(1536), '1.5 KB');
  t.is(formatBytes(Math.round(12.3 * 1024 ** 2)), '12.3 MB');
  t.is(formatBytes(2 * 1024 ** 3), '2.0 GB');
  t.is(formatBytes(3 * 1024 ** 4), '3.0 TB');
  t.is(formatBytes(1024 ** 5), '1024.0 TB');
});

test('formatBytes never prints 1024.0 of a unit when the next unit exists', (t) => {
  t.is(formatBytes(1024 ** 2 - 1), '1.0 MB');
});

test('formatBytes prints whole bytes for a fractional value below 1 KB', (t) => {
  t.is(formatBytes(1537 / 3), '512 B');
});
