import test from 'ava';
import { checkScoringSchema } from '../../hub/registry/scoring-schema.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { imageMediaType, inferScoringSchema, inferSchema, MAX_EXAMPLE_DEPTH } from '../../shared/schema-infer.js';

const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(40, 7)]).toString('base64');
const JPEG = Buffer.concat([Buffer.from('ffd8ffe0', 'hex'), Buffer.alloc(40, 1)]).toString('base64');
const BLOB = Buffer.from(Array.from({ length: 48 }, (_, i) => (i * 37) % 256)).toString('base64');
const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';

test('numbers, integers, booleans, null, strings and nested objects (required = present keys, no others)', (t) => {
  t.deepEqual(inferSchema({ a: 1, b: 1.5, c: true, d: null, e: 'hello', f: { g: 2 } }), {
    $schema: DRAFT_07,
    type: 'object',
    properties: {
      a: { type: 'integer' },
      b: { type: 'number' },
      c: { type: 'boolean' },
      d: { type: 'null' },
      e: { type: 'string' },
      f: { type: 'object', properties: { g: { type: 'integer' } }, required: ['g'], additionalProperties: false },
    },
    required: ['a', 'b', 'c', 'd', 'e', 'f'],
    additionalProperties: false,
  });
});

test('number tensors keep their observed lengths at every level; integers and numbers mixed are numbers', (t) => {
  const { $schema, ...features } = inferSchema([5, 3.5, 1.4, 0.2]);
  t.is($schema, DRAFT_07);
  t.deepEqual(features, { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 4 });
  const { $schema: _, ...image } = inferSchema([[[1, 2, 3], [4, 5, 6]]]);
  t.deepEqual(image, {
    type: 'array',
    minItems: 1,
    maxItems: 1,
    items: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'array', minItems: 3, maxItems: 3, items: { type: 'integer' } } },
  });
  // Ragged rows: the inner length is not fixed.
  t.deepEqual((inferSchema([[1, 2], [3]]) as any).items, { type: 'array', items: { type: 'integer' } });
});

test('arrays of records: merged properties, required = in every record, any length', (t) => {
  const { $schema, ...rows } = inferSchema([{ a: 1, b: 'x' }, { a: 2.5 }]);
  t.deepEqual(rows, {
    type: 'array',
    items: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'string' } }, required: ['a'], additionalProperties: false },
  });
  t.deepEqual((inferSchema([]) as any).type, 'array');
  t.deepEqual((inferSchema([1, 'a']) as any).items, { type: ['integer', 'string'] });
});

test('base64: images get their media type from magic bytes; long base64 is marked; words and short strings are text', (t) => {
  t.deepEqual((inferSchema({ image: PNG }) as any).properties.image, { type: 'string', contentEncoding: 'base64', contentMediaType: 'image/png' });
  t.deepEqual((inferSchema({ image: JPEG }) as any).properties.image, { type: 'string', contentEncoding: 'base64', contentMediaType: 'image/jpeg' });
  t.deepEqual((inferSchema({ blob: BLOB }) as any).properties.blob, { type: 'string', contentEncoding: 'base64' });
  for (const text of ['hello', 'abcd', 'setosa', 'ThisIsALongIdentifierWithoutDigitsAtAll', 'not base64 at all, with spaces and 123 digits', `${BLOB}x`]) {
    t.deepEqual((inferSchema({ s: text }) as any).properties.s, { type: 'string' }, text);
  }
  t.deepEqual((inferSchema({ images: [PNG, PNG] }) as any).properties.images.items, { type: 'string', contentEncoding: 'base64', contentMediaType: 'image/png' });
  t.is(imageMediaType(Buffer.from('GIF89a')), 'image/gif');
  t.is(imageMediaType(Buffer.from('plain')), undefined);
});

test('--decode marks number tensors ndarray and arrays of flat records dataframe', (t) => {
  const schema = inferSchema({ features: [[1, 2], [3, 4]], rows: [{ a: 1, b: 'x' }], tags: ['a'] }, { decode: true }) as any;
  t.is(schema.properties.features['x-edgeml-decode'], 'ndarray');
  t.is(schema.properties.features.items['x-edgeml-decode'], undefined);
  t.is(schema.properties.rows['x-edgeml-decode'], 'dataframe');
  t.is(schema.properties.tags['x-edgeml-decode'], undefined);
  t.is((inferSchema({ features: [1, 2] }) as any).properties.features['x-edgeml-decode'], undefined);
});

test('the document has input, output (from the output sample, else any) and sample, and the hub accepts it', (t) => {
  const sample = { features: [5.1, 3.5, 1.4, 0.2], image: PNG, meta: { id: 'a', n: null }, rows: [{ a: 1 }] };
  const doc = inferScoringSchema(sample, { class: 'setosa', scores: [0.9, 0.1] }, { decode: true });
  t.deepEqual(doc.sample, sample);
  t.deepEqual((doc.output as any).properties.scores, { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 });
  t.notThrows(() => checkScoringSchema(doc));
  const anyOutput = inferScoringSchema(sample);
  t.deepEqual(anyOutput.output, {});
  t.notThrows(() => checkScoringSchema(anyOutput));
  for (const value of [1, 'x', null, true, [1, 2], [], {}]) t.notThrows(() => checkScoringSchema(inferScoringSchema(value)), JSON.stringify(value));
});

test('the hub refuses an unknown x-edgeml-decode or a bad x-edgeml-dtype, and accepts the known ones', (t) => {
  const doc = (decode: unknown, dtype?: unknown) => ({
    input: { type: 'object', properties: { x: { type: 'array', 'x-edgeml-decode': decode, ...(dtype === undefined ? {} : { 'x-edgeml-dtype': dtype }) } } },
    output: {},
    sample: { x: [1] },
  });
  for (const mode of ['bytes', 'ndarray', 'dataframe', 'none']) t.notThrows(() => checkScoringSchema(doc(mode, 'float32')), mode);
  t.throws(() => checkScoringSchema(doc('tensor')), { message: 'schema.input.properties.x.x-edgeml-decode: must be one of "bytes", "ndarray", "dataframe", "none"' });
  t.throws(() => checkScoringSchema(doc('ndarray', 3)), { message: /x-edgeml-dtype: must be a numpy dtype name/ });
});

/** An example `levels` objects deep: {"a": {"a": … {"a": 1}}}. */
function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i += 1) value = { a: value };
  return value;
}

test('examples nested up to MAX_EXAMPLE_DEPTH give a document the hub accepts; deeper ones (even very deep) are a short input error, not a stack overflow', (t) => {
  t.is(MAX_EXAMPLE_DEPTH, 31);
  t.notThrows(() => checkScoringSchema(inferScoringSchema(nested(MAX_EXAMPLE_DEPTH), nested(MAX_EXAMPLE_DEPTH))));
  for (const levels of [MAX_EXAMPLE_DEPTH + 1, 100_000]) {
    const err = t.throws(() => inferScoringSchema(nested(levels)), { instanceOf: EdgemlError });
    t.is(err?.code, ErrorCodes.CLI_INPUT_INVALID);
    t.is(err?.message, 'the sample is nested more than 31 levels deep: its schema would be deeper than the hub accepts');
  }
  const deepOutput = t.throws(() => inferScoringSchema({ x: 1 }, nested(MAX_EXAMPLE_DEPTH + 1)), { instanceOf: EdgemlError });
  t.regex(deepOutput?.message ?? '', /^the output sample is nested more than 31 levels deep/);
  const deepArray = t.throws(() => inferSchema(JSON.parse(`${'['.repeat(50_000)}${']'.repeat(50_000)}`)), { instanceOf: EdgemlError });
  t.regex(deepArray?.message ?? '', /^the example is nested more than 31 levels deep/);
});
