/**
 * Values for a JSON Schema as `/openapi.json` lists it (the TypeBox subset the hub uses): valid
 * ones, built from the schema, and hostile ones, each a valid value with one mutation. Strings
 * with a pattern come from a pool of plausible shapes filtered by the pattern (no regex
 * inversion): a pattern no shape matches falls back to the schema's example.
 */
import type { Random } from './random.js';

export interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  patternProperties?: Record<string, JsonSchema>;
  minProperties?: number;
  maxProperties?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number | boolean;
  exclusiveMaximum?: number | boolean;
  example?: unknown;
  examples?: unknown[];
}

/** Names that exist in the hub under test (a device id, a model reference, a label…), tried first. */
export interface Vocabulary {
  words: string[];
  /** Keys for maps (labels, selectors, env). */
  keys: string[];
}

const HEX = '0123456789abcdef';
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

function shapes(rng: Random, vocabulary: Vocabulary): string[] {
  const word = () => rng.pick([...ALNUM.slice(0, 26)]) + rng.string(ALNUM, rng.int(0, 10));
  return [
    ...vocabulary.words,
    word(),
    word().toUpperCase(),
    `${word()}-${word()}`,
    String(rng.int(0, 100)),
    `${rng.int(1, 999)}${rng.pick(['ms', 's', 'm', 'h', 'd'])}`,
    `${rng.int(0, 100)}%`,
    // Sizes across the whole range a pattern allows, not only the sensible middle.
    `${rng.pick([0, 1, 3, 4, 64, 512, 4096, 99_999_999])}${rng.pick(['', 'b', 'k', 'ki', 'm', 'Mi', 'g', 'G', 't'])}`,
    `127.0.0.1:5000/fuzz/${word()}@sha256:${rng.string(HEX, 64)}`,
    `${word()}:${rng.int(1, 5)}`,
    `${word()}@${word()}`,
    rng.pick(['score.js', 'score.py', 'requirements.txt', 'package.json']),
    'http://127.0.0.1:8090',
    rng.pick(['linux/amd64', 'linux/arm64']),
    rng.string(HEX, 64),
    `sha256:${rng.string(HEX, 64)}`,
    `${word()} ${word()}`,
  ];
}

const patterns = new Map<string, RegExp>();

/** Compiled as ajv compiles it (unicode mode). */
function patternOf(source: string): RegExp {
  let re = patterns.get(source);
  if (re === undefined) {
    re = new RegExp(source, 'u');
    patterns.set(source, re);
  }
  return re;
}

function fitsString(s: string, schema: JsonSchema): boolean {
  const length = [...s].length;
  if (schema.minLength !== undefined && length < schema.minLength) return false;
  if (schema.maxLength !== undefined && length > schema.maxLength) return false;
  return schema.pattern === undefined || patternOf(schema.pattern).test(s);
}

function exampleOf(schema: JsonSchema): unknown {
  return schema.example ?? schema.examples?.[0];
}

function typesOf(schema: JsonSchema): string[] {
  if (schema.type === undefined) return ['any'];
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

/** A JSON value of any kind, bounded in size: for schemas that accept anything. */
export function anyJson(rng: Random, depth = 0): unknown {
  const kind = rng.int(0, depth > 3 ? 3 : 5);
  switch (kind) {
    case 0:
      return rng.chance(0.5) ? null : rng.chance(0.5);
    case 1:
      return rng.chance(0.5) ? rng.int(-1000, 1000) : rng.next() * 1e6;
    case 2:
    case 3:
      return rng.string(ALNUM, rng.int(0, 12));
    case 4:
      return Array.from({ length: rng.int(0, 4) }, () => anyJson(rng, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: rng.int(0, 4) }, () => [rng.string(ALNUM, rng.int(1, 8)), anyJson(rng, depth + 1)]));
  }
}

export function validValue(schema: JsonSchema, rng: Random, vocabulary: Vocabulary, depth = 0): unknown {
  const example = exampleOf(schema);
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return rng.pick(schema.enum);
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) return validValue(rng.pick(branches), rng, vocabulary, depth);
  if (schema.allOf) return validValue(Object.assign({}, ...schema.allOf) as JsonSchema, rng, vocabulary, depth);
  const type = rng.pick(typesOf(schema));
  switch (type) {
    case 'null':
      return null;
    case 'boolean':
      return rng.chance(0.5);
    case 'integer':
    case 'number': {
      // OpenAPI 3.0 spells an exclusive bound as a boolean beside minimum/maximum; JSON Schema as the number itself.
      const step = type === 'integer' ? 1 : 0.001;
      const lowBound = typeof schema.exclusiveMinimum === 'number' ? schema.exclusiveMinimum : schema.minimum;
      const highBound = typeof schema.exclusiveMaximum === 'number' ? schema.exclusiveMaximum : schema.maximum;
      const lowExclusive = schema.exclusiveMinimum === true || typeof schema.exclusiveMinimum === 'number';
      const highExclusive = schema.exclusiveMaximum === true || typeof schema.exclusiveMaximum === 'number';
      const low = lowBound === undefined ? 0 : lowBound + (lowExclusive ? step : 0);
      const high = highBound === undefined ? low + 100 : highBound - (highExclusive ? step : 0);
      const value = rng.chance(0.2) ? rng.pick([low, high]) : low + rng.next() * (Math.min(high, low + 1000) - low);
      return type === 'integer' ? Math.round(Math.max(low, Math.min(high, value))) : Math.max(low, Math.min(high, value));
    }
    case 'string': {
      if (typeof example === 'string' && fitsString(example, schema) && rng.chance(0.2)) return example;
      const fitting = shapes(rng, vocabulary).filter((s) => fitsString(s, schema));
      if (fitting.length > 0) return rng.pick(fitting);
      return typeof example === 'string' ? example : 'x'.repeat(schema.minLength ?? 1);
    }
    case 'array': {
      const min = schema.minItems ?? 0;
      const max = Math.min(schema.maxItems ?? min + 3, min + 3);
      const items: unknown[] = [];
      const wanted = rng.int(min, max);
      // Bounded attempts: a small enum cannot always fill a long unique array.
      for (let attempt = 0; items.length < wanted && attempt < wanted * 4; attempt++) {
        const item = validValue(schema.items ?? {}, rng, vocabulary, depth + 1);
        if (!schema.uniqueItems || !items.some((i) => JSON.stringify(i) === JSON.stringify(item))) items.push(item);
      }
      return items;
    }
    case 'object': {
      if (schema.properties === undefined && schema.additionalProperties === undefined && example !== undefined) return example;
      const out: Record<string, unknown> = {};
      for (const [key, sub] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(key) || rng.chance(0.5)) out[key] = validValue(sub, rng, vocabulary, depth + 1);
      }
      const maps: Array<[JsonSchema, JsonSchema]> = Object.entries(schema.patternProperties ?? {}).map(([pattern, sub]) => [{ type: 'string', pattern }, sub]);
      if (typeof schema.additionalProperties === 'object') maps.push([{ type: 'string' }, schema.additionalProperties]);
      for (const [keySchema, valueSchema] of maps) {
        const keys = vocabulary.keys.filter((k) => fitsString(k, keySchema));
        const count = keys.length === 0 ? 0 : rng.int(schema.minProperties ?? 0, Math.max(schema.minProperties ?? 0, 3));
        for (let i = 0; i < count; i++) out[rng.pick(keys)] = validValue(valueSchema, rng, vocabulary, depth + 1);
      }
      return out;
    }
    default:
      return example !== undefined && rng.chance(0.7) ? example : anyJson(rng, depth);
  }
}

/** Values of every other JSON type than the schema's, and the classic troublemakers. */
const ODD_VALUES: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  -0,
  1.5,
  1e308,
  -1e308,
  5e-324,
  2 ** 53 + 1,
  Number.MAX_SAFE_INTEGER * 1024,
  '',
  ' ',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e999',
  '0x10',
  '99999999999999999999t',
  '-1',
  'null',
  'true',
  [],
  [null],
  {},
  { '': '' },
];

const HOSTILE_STRINGS: readonly string[] = [
  '\u0000',
  '\u202e\u0645\u0631\u062d\u0628\u0627',
  '😀'.repeat(20),
  '\ud800',
  '\udfff\ud800',
  'e\u0301',
  '../../../../etc/passwd',
  '..',
  '/',
  '%2e%2e%2f',
  'a\r\nInjected: header',
  '${jndi:ldap://127.0.0.1/x}',
  "'; DROP TABLE x; --",
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  'a=b',
  '*',
  '#',
  '+',
  'edgeml/v1/dev/+/desired',
];

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf'];

/** Sets `key` as an own, enumerable property, even `__proto__` (so JSON.stringify writes it). */
function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Deep nesting is spliced into the text: JSON.stringify itself recurses and would overflow first. */
const DEEP_SENTINEL = '\u0000edgeml-fuzz-deep\u0000';

function nestedText(depth: number, leaf: string, asArray: boolean): string {
  return asArray ? `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
}

/** A node of a JSON document with the path to it, for replacing one place inside it. */
interface Slot {
  get(): unknown;
  set(value: unknown): void;
  parent: Record<string, unknown> | unknown[] | null;
}

function slots(root: { value: unknown }): Slot[] {
  const out: Slot[] = [{ get: () => root.value, set: (v) => (root.value = v), parent: null }];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        out.push({ get: () => node[i], set: (v) => (node[i] = v), parent: node });
        walk(child);
      });
    } else if (node !== null && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        out.push({ get: () => record[key], set: (v) => defineOwn(record, key, v), parent: record });
        walk(record[key]);
      }
    }
  };
  walk(root.value);
  return out;
}

export interface Mutation {
  /** What was done, for the failure message. */
  kind: string;
  /** The mutated document as JSON text (empty when the mutation removed it all). */
  text: string;
}

/**
 * One mutation of `valid` (a deep copy is changed). `maxString` bounds huge strings: keep it near
 * the route's body limit so both sides of it are tried without sending megabytes every time.
 */
export function mutate(valid: unknown, rng: Random, maxString: number): Mutation {
  const root = { value: structuredClone(valid) };
  const targets = slots(root);
  const slot = rng.pick(targets);
  const kinds = ['odd-value', 'hostile-string', 'huge-string', 'deep-nesting', 'extra-field', 'proto-key', 'drop-field', 'huge-array', 'unicode-key'] as const;
  const kind = rng.pick(kinds);
  let deep = '';
  const objects = targets.map((s) => s.get()).filter((v): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v));
  switch (kind) {
    case 'odd-value':
      slot.set(structuredClone(rng.pick(ODD_VALUES)));
      break;
    case 'hostile-string':
      slot.set(rng.chance(0.5) ? rng.pick(HOSTILE_STRINGS) : `${String(slot.get())}${rng.pick(HOSTILE_STRINGS)}`);
      break;
    case 'huge-string':
      slot.set(rng.pick(['a', '9', 'é', '\u0000']).repeat(rng.int(1, maxString)));
      break;
    case 'deep-nesting':
      deep = nestedText(rng.int(50, 20_000), JSON.stringify(slot.get()) ?? 'null', rng.chance(0.5));
      slot.set(DEEP_SENTINEL);
      break;
    case 'huge-array':
      slot.set(Array.from({ length: rng.int(100, 20_000) }, (_, i) => (rng.chance(0.5) ? i : slot.get())));
      break;
    case 'extra-field':
    case 'proto-key':
    case 'unicode-key': {
      const target = objects.length > 0 ? rng.pick(objects) : undefined;
      const key = kind === 'proto-key' ? rng.pick(PROTO_KEYS) : kind === 'unicode-key' ? rng.pick(HOSTILE_STRINGS) : `extra${rng.int(0, 99)}`;
      const value = kind === 'proto-key' ? rng.pick([{ polluted: true, isAdmin: true }, null, 'x', 1]) : rng.pick(ODD_VALUES);
      if (target) defineOwn(target, key, value);
      else root.value = Object.defineProperty({}, key, { value, enumerable: true });
      break;
    }
    case 'drop-field': {
      const target = objects.length > 0 ? rng.pick(objects) : undefined;
      const keys = target ? Object.keys(target) : [];
      if (target && keys.length > 0) delete target[rng.pick(keys)];
      else root.value = undefined;
      break;
    }
  }
  const text = JSON.stringify(root.value) ?? '';
  return { kind, text: deep === '' ? text : text.replace(JSON.stringify(DEEP_SENTINEL), () => deep) };
}

/** Body texts that are not the JSON they claim to be. */
export function brokenJson(valid: unknown, rng: Random): { kind: string; text: string } {
  const text = JSON.stringify(valid) ?? '';
  const options: Array<() => { kind: string; text: string }> = [
    () => ({ kind: 'truncated', text: text.slice(0, rng.int(0, Math.max(0, text.length - 1))) }),
    () => ({ kind: 'trailing', text: `${text}${rng.pick(['x', '}', ',', ' {}', '\u0000'])}` }),
    () => ({ kind: 'bom', text: `\ufeff${text}` }),
    () => ({ kind: 'duplicate-keys', text: text.startsWith('{') && text.length > 2 ? `{"__proto__":{"x":1},${text.slice(1)}` : `{"a":1,"a":2}` }),
    () => ({ kind: 'comment', text: `/* c */${text}` }),
    () => ({ kind: 'single-quotes', text: text.replaceAll('"', "'") }),
    () => ({ kind: 'nan-literal', text: text.startsWith('{') ? `{"n":NaN${text.length > 2 ? ',' : ''}${text.slice(1)}` : 'NaN' }),
    () => ({ kind: 'empty', text: '' }),
    () => ({ kind: 'whitespace', text: ' \n\t ' }),
    () => ({ kind: 'scalar', text: rng.pick(['null', '0', '"x"', 'true', '[]']) }),
    () => ({ kind: 'deep-text', text: '['.repeat(rng.int(1000, 100_000)) }),
  ];
  return rng.pick(options)();
}
