/** Evaluation metrics and RFC 6901 pointers into scoring answers. */
import test from 'ava';
import { ErrorCodes } from '../../shared/errors.js';
import { better, computeMetric, pairProblem } from '../../hub/evaluation/metrics.js';
import { EVAL_METRIC_NAMES } from '../../shared/api/retraining.js';
import { valueAt } from '../../shared/json-pointer.js';
import { answeredByAll, metricOn } from '../../hub/evaluation/evaluate.js';

// RFC 6901 §5, the example document.
const doc = { foo: ['bar', 'baz'], '': 0, 'a/b': 1, 'c%d': 2, 'e^f': 3, 'g|h': 4, 'i\\j': 5, 'k"l': 6, ' ': 7, 'm~n': 8 };

test('valueAt resolves every pointer of RFC 6901 §5', (t) => {
  t.is(valueAt(doc, ''), doc);
  t.deepEqual(valueAt(doc, '/foo'), ['bar', 'baz']);
  t.is(valueAt(doc, '/foo/0'), 'bar');
  t.is(valueAt(doc, '/'), 0);
  t.is(valueAt(doc, '/a~1b'), 1);
  t.is(valueAt(doc, '/c%d'), 2);
  t.is(valueAt(doc, '/e^f'), 3);
  t.is(valueAt(doc, '/g|h'), 4);
  t.is(valueAt(doc, '/i\\j'), 5);
  t.is(valueAt(doc, '/k"l'), 6);
  t.is(valueAt(doc, '/ '), 7);
  t.is(valueAt(doc, '/m~0n'), 8);
});

test('~01 unescapes to ~1, not to / (the order of RFC 6901 §4)', (t) => {
  t.is(valueAt({ '~1': 'tilde-one', '/': 'slash' }, '/~01'), 'tilde-one');
});

test('array indexes: nested answers, out of range, leading zeros, "-" and non-numbers are absent', (t) => {
  const answer = { predictions: [{ label: 'setosa', scores: [0.9, 0.1] }, { label: 'virginica' }] };
  t.is(valueAt(answer, '/predictions/0/label'), 'setosa');
  t.is(valueAt(answer, '/predictions/1/label'), 'virginica');
  t.is(valueAt(answer, '/predictions/0/scores/1'), 0.1);
  t.is(valueAt(answer, '/predictions/2/label'), undefined);
  t.is(valueAt(answer, '/predictions/00/label'), undefined);
  t.is(valueAt(answer, '/predictions/-'), undefined);
  t.is(valueAt(answer, '/predictions/x'), undefined);
  t.is(valueAt(answer, '/predictions/length'), undefined, 'an array property is not an index');
});

test('missing members, scalars on the way, and inherited names are absent; null is a value', (t) => {
  t.is(valueAt({ y: 1 }, '/z'), undefined);
  t.is(valueAt({ y: 1 }, '/y/z'), undefined);
  t.is(valueAt({ y: null }, '/y'), null);
  t.is(valueAt({ y: null }, '/y/z'), undefined);
  t.is(valueAt({}, '/constructor'), undefined);
  t.is(valueAt({}, '/__proto__'), undefined);
});

test('a pointer that is not one is refused with a 400 naming it', (t) => {
  for (const bad of ['y', '/a~2', '/a~']) {
    const err = t.throws(() => valueAt({}, bad));
    t.is((err as { code?: string }).code, ErrorCodes.HUB_INVALID_REQUEST);
    t.true(err!.message.includes(JSON.stringify(bad)));
  }
});

test('accuracy: the share of answers equal to their label as JSON values', (t) => {
  t.deepEqual([...EVAL_METRIC_NAMES], ['accuracy', 'mae', 'rmse']);
  const pairs = [
    { predicted: 'setosa', label: 'setosa' },
    { predicted: 'virginica', label: 'setosa' },
    { predicted: 1, label: 1 },
    { predicted: 1, label: '1' },
    { predicted: { a: [1] }, label: { a: [1] } },
  ];
  t.is(computeMetric('accuracy', pairs), 3 / 5);
});

test('mae and rmse of numbers', (t) => {
  const pairs = [
    { predicted: 1, label: 2 },
    { predicted: 5, label: 2 },
    { predicted: 2, label: 2 },
    { predicted: -1, label: 1 },
  ];
  t.is(computeMetric('mae', pairs), (1 + 3 + 0 + 2) / 4);
  t.is(computeMetric('rmse', pairs), Math.sqrt((1 + 9 + 0 + 4) / 4));
});

test('mae of a non-number and a metric over no rows are errors', (t) => {
  t.throws(() => computeMetric('mae', [{ predicted: 'a', label: 1 }]), { message: /"a" is not a number/ });
  t.throws(() => computeMetric('rmse', [{ predicted: 1, label: null }]), { message: /null is not a number/ });
  t.throws(() => computeMetric('accuracy', []), { message: /no rows/ });
});

test('better: accuracy higher, errors lower, by at least the minimum improvement', (t) => {
  t.true(better('accuracy', 0.9, 0.8, 0));
  t.false(better('accuracy', 0.8, 0.8, 0), 'equal is not better');
  t.false(better('accuracy', 0.7, 0.8, 0));
  t.true(better('accuracy', 0.9, 0.8, 0.1 - 1e-12));
  t.false(better('accuracy', 0.85, 0.8, 0.1));
  t.true(better('mae', 0.5, 1.5, 0));
  t.false(better('mae', 1.5, 0.5, 0));
  t.true(better('rmse', 1, 2, 1));
  t.false(better('rmse', 1.5, 2, 1));
});

test('pairProblem: a non-number under mae or rmse is one row\'s problem, named; accuracy takes any value', (t) => {
  t.is(pairProblem('mae', { predicted: 1, label: 2 }), null);
  t.regex(pairProblem('mae', { predicted: 'a', label: 2 }) ?? '', /the answer "a" is not a number: mae/);
  t.regex(pairProblem('rmse', { predicted: 1, label: 'n/a' }) ?? '', /the label "n\/a" is not a number: rmse/);
  t.regex(pairProblem('mae', { predicted: 1, label: Number.NaN }) ?? '', /the label null is not a number/);
  t.is(pairProblem('accuracy', { predicted: 'a', label: 2 }), null);
});

test('answeredByAll and metricOn: two models measured on the rows both answered', (t) => {
  const rows = [{ label: 1 }, { label: 2 }, { label: 3 }, { label: 4 }];
  const current = [
    { index: 0, predicted: 1 },
    { index: 1, predicted: null },
    { index: 2, predicted: 5 },
    { index: 3, predicted: 4 },
  ];
  const candidate = [
    { index: 0, predicted: 2 },
    { index: 1, predicted: 2 },
    { index: 2, predicted: 3 },
    { index: 3, predicted: null },
  ];
  const both = answeredByAll(current, candidate);
  t.deepEqual(both, [0, 2]);
  t.is(metricOn('mae', current, rows, both), (0 + 2) / 2);
  t.is(metricOn('mae', candidate, rows, both), (1 + 0) / 2);
  t.deepEqual(answeredByAll(current), [0, 2, 3]);
  t.throws(() => metricOn('mae', current, rows, []), { message: /no rows/ });
});
