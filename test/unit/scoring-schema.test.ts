/**
 * A manifest's schema document (hub/registry/scoring-schema.ts): `{input, output, sample}` where
 * input and output are JSON Schemas and sample must match input. Every failure is a 400
 * HUB_E_MANIFEST_INVALID naming the part.
 */
import test, { type ExecutionContext } from 'ava';
import { checkScoringSchema } from '../../hub/registry/scoring-schema.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

const INPUT = {
  type: 'object',
  required: ['pixels'],
  properties: { pixels: { type: 'array', items: { type: 'number' } }, label: { type: 'string' } },
  additionalProperties: false,
};
const OUTPUT = { type: 'object', properties: { score: { type: 'number' } } };
const GOOD = { input: INPUT, output: OUTPUT, sample: { pixels: [0.1, 0.2, 0.3] } };

/** Expects checkScoringSchema(doc) to throw a 400 HUB_E_MANIFEST_INVALID and returns the message. */
function invalid(t: ExecutionContext, doc: unknown): string {
  const err = t.throws(() => checkScoringSchema(doc), { instanceOf: EdgemlError });
  t.is(err?.code, ErrorCodes.HUB_MANIFEST_INVALID);
  t.is(err?.code, 'HUB_E_MANIFEST_INVALID');
  t.is(err?.httpStatus, 400);
  return err?.message ?? '';
}

test('a good {input, output, sample} is accepted and returned', (t) => {
  const doc = structuredClone(GOOD);
  t.deepEqual(checkScoringSchema(doc), GOOD);
});

test('boolean schemas are valid JSON Schemas', (t) => {
  t.deepEqual(checkScoringSchema({ input: true, output: true, sample: 42 }), { input: true, output: true, sample: 42 });
});

test('a document that is not an object is refused', (t) => {
  for (const doc of [null, [], 'schema', 3, undefined]) {
    t.regex(invalid(t, doc), /^schema: must be a JSON object/, JSON.stringify(doc));
  }
});

test('an unknown part is refused, naming it', (t) => {
  t.is(invalid(t, { ...GOOD, examples: [] }), 'schema.examples: is not a known part (expected input, output, sample)');
});

test('a missing part is refused, naming it', (t) => {
  for (const part of ['input', 'output', 'sample'] as const) {
    const doc: Record<string, unknown> = structuredClone(GOOD);
    delete doc[part];
    t.is(invalid(t, doc), `schema.${part}: is required`);
  }
});

test('input or output that is not an object or boolean is refused', (t) => {
  t.is(invalid(t, { ...GOOD, input: 'object' }), 'schema.input: must be a JSON Schema (an object)');
  t.is(invalid(t, { ...GOOD, input: [] }), 'schema.input: must be a JSON Schema (an object)');
  t.is(invalid(t, { ...GOOD, output: null }), 'schema.output: must be a JSON Schema (an object)');
});

test('input that is not a valid JSON Schema is refused', (t) => {
  const message = invalid(t, { input: { type: 'tensor' }, output: OUTPUT, sample: {} });
  t.regex(message, /^schema\.input: is not a valid JSON Schema: /);
  t.true(message.includes('type'), message);
});

test('output that is not a valid JSON Schema is refused, naming output', (t) => {
  t.regex(invalid(t, { ...GOOD, output: { type: 'tensor' } }), /^schema\.output: is not a valid JSON Schema: /);
  t.regex(invalid(t, { ...GOOD, output: { $ref: '#/definitions/missing' } }), /^schema\.output: is not a valid JSON Schema: /);
});

test('a sample that does not match input names the field under sample', (t) => {
  t.is(invalid(t, { ...GOOD, sample: { pixels: 'abc' } }), 'schema.sample does not match schema.input: sample.pixels: must be array');
  t.is(invalid(t, { ...GOOD, sample: { pixels: [1, 'x'] } }), 'schema.sample does not match schema.input: sample.pixels.1: must be number');
  t.is(invalid(t, { ...GOOD, sample: {} }), 'schema.sample does not match schema.input: sample.pixels: is required');
  t.is(invalid(t, { ...GOOD, sample: { pixels: [], extra: 1 } }), 'schema.sample does not match schema.input: sample.extra: is not a known field');
  t.is(invalid(t, { ...GOOD, sample: [1] }), 'schema.sample does not match schema.input: sample: must be object');
});

test('formats are checked in the sample', (t) => {
  const input = { type: 'object', properties: { at: { type: 'string', format: 'date-time' } } };
  t.notThrows(() => checkScoringSchema({ input, output: {}, sample: { at: '2024-05-01T12:00:00Z' } }));
  t.regex(invalid(t, { input, output: {}, sample: { at: 'yesterday' } }), /sample\.at: must match format "date-time"/);
});

test('a 2020-12 $schema with prefixItems is validated with the 2020-12 dialect', (t) => {
  const input = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'array',
    prefixItems: [{ type: 'string' }, { type: 'number' }],
    items: false,
  };
  t.deepEqual(checkScoringSchema({ input, output: {}, sample: ['a', 1] }).sample, ['a', 1]);
  // prefixItems is honoured (a draft-07 validator would ignore it) ...
  t.is(invalid(t, { input, output: {}, sample: ['a', 'b'] }), 'schema.sample does not match schema.input: sample.1: must be number');
  // ... and `items: false` means no items after the prefix.
  t.regex(invalid(t, { input, output: {}, sample: ['a', 1, 2] }), /^schema\.sample does not match schema\.input: sample: /);
});

test('a 2019-09 $schema is accepted', (t) => {
  const input = { $schema: 'https://json-schema.org/draft/2019-09/schema', type: 'object', dependentRequired: { a: ['b'] } };
  t.notThrows(() => checkScoringSchema({ input, output: {}, sample: { a: 1, b: 2 } }));
  t.regex(invalid(t, { input, output: {}, sample: { a: 1 } }), /^schema\.sample does not match schema\.input: sample/);
});

test('a document nested deeper than any honest schema is refused, naming where (it would overflow the stack of the worker copy, ajv and the store)', (t) => {
  let sample: unknown = 1;
  for (let i = 0; i < 20_000; i++) sample = [sample];
  t.regex(invalid(t, { input: { type: 'array' }, output: OUTPUT, sample }), /^schema\.sample\[0\](\[0\])*: is nested more than 64 levels deep$/);
  let input: Record<string, unknown> = { type: 'object' };
  for (let i = 0; i < 100; i++) input = { type: 'object', properties: { a: input } };
  t.regex(invalid(t, { input, output: OUTPUT, sample: {} }), /^schema\.input\.properties\.a\..*: is nested more than 64 levels deep$/);
  let shallow: unknown = 1;
  for (let i = 0; i < 30; i++) shallow = [shallow];
  t.deepEqual(checkScoringSchema({ input: { type: 'array' }, output: OUTPUT, sample: shallow }).sample, shallow);
});
