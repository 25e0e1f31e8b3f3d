/**
 * Parsers for command-line values. Each checks a value against the REST contract's own patterns
 * before anything is sent, and a refusal names the flag or argument and the form it expects, so a
 * typo is caught locally with a better message than the hub's 400 could give.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ALIAS_PATTERN, NAME_PATTERN, TAG_KEY_PATTERN } from '../shared/api/common.js';
import { API_KEY_NAME_PATTERN } from '../shared/api/apikeys.js';
import { LABEL_VALUE_PATTERN } from '../shared/api/devices.js';
import { ENV_NAME_PATTERN } from '../shared/api/manifests.js';
import { FILENAME_PATTERN, FRAMEWORK_PATTERN } from '../shared/api/models.js';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import { DEVICE_ID_PATTERN } from '../shared/topics.js';

export function inputError(message: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.CLI_INPUT_INVALID, message, cause === undefined ? {} : { cause });
}

function matcher(pattern: string, label: string, expected: string) {
  const re = new RegExp(pattern);
  return (value: string): string => {
    if (!re.test(value)) throw inputError(`${label} ${JSON.stringify(value)}: expected ${expected}`);
    return value;
  };
}

const NAME_RULE = '1–64 lowercase letters, digits, ".", "_" or "-"';
const ALIAS_RULE = 'a lowercase letter, then up to 31 lowercase letters, digits, ".", "_" or "-" ("latest" is reserved)';

export const parseName = (label: string) => matcher(NAME_PATTERN, label, `a name of ${NAME_RULE}, e.g. resnet50`);
export const parseAlias = (label: string) => matcher(ALIAS_PATTERN, label, `an alias of ${ALIAS_RULE}, e.g. production`);
export const parseFramework = (label: string) =>
  matcher(FRAMEWORK_PATTERN, label, 'up to 32 lowercase letters, digits or "._+-", e.g. onnx, tflite, pytorch');
export const parseApiKeyName = (label: string) =>
  matcher(API_KEY_NAME_PATTERN, label, 'up to 64 letters, digits, spaces or "._@-", starting with a letter or digit, e.g. ci-pipeline');

/** A file name the hub accepts for a stored file (a single-file model keeps it in the image). */
export function checkFilename(path: string, filename: string): string {
  if (!new RegExp(FILENAME_PATTERN).test(filename)) {
    throw inputError(`${path}: the file name ${JSON.stringify(filename)} must be 1–255 letters, digits or "._+-"; rename or copy the file`);
  }
  return filename;
}

const VERSION_RE = /^[1-9][0-9]{0,8}$/;

export function parseVersion(label: string) {
  return (value: string): number => {
    if (!VERSION_RE.test(value)) throw inputError(`${label} ${JSON.stringify(value)}: expected a version number 1, 2, …`);
    return Number(value);
  };
}

export function parseChoice<const T extends readonly string[]>(label: string, choices: T) {
  return (value: string): T[number] => {
    if (!choices.includes(value)) throw inputError(`${label} ${JSON.stringify(value)}: expected one of ${choices.join(', ')}`);
    return value as T[number];
  };
}

export interface KeyValue {
  key: string;
  value: string;
}

interface KeyValueForm {
  keyPattern: string;
  /** How the expected form reads: `KEY=VALUE`, `KEY=NUMBER`. */
  form: string;
  example: string;
  /** Checks the value part; returns why it is wrong, or undefined. */
  checkValue?: (value: string) => string | undefined;
}

function parseKeyValue(label: string, form: KeyValueForm) {
  const keyRe = new RegExp(form.keyPattern);
  return (text: string): KeyValue => {
    const eq = text.indexOf('=');
    const key = eq < 0 ? '' : text.slice(0, eq);
    const value = eq < 0 ? '' : text.slice(eq + 1);
    const problem = eq < 0 ? 'no "="' : !keyRe.test(key) ? `bad key ${JSON.stringify(key)}` : form.checkValue?.(value);
    if (problem) throw inputError(`${label} ${JSON.stringify(text)}: expected ${form.form}, e.g. ${form.example} (${problem})`);
    return { key, value };
  };
}

export const parseTag = (label: string) => parseKeyValue(label, { keyPattern: TAG_KEY_PATTERN, form: 'KEY=VALUE', example: 'team=vision' });

export const parseMetric = (label: string) =>
  parseKeyValue(label, {
    keyPattern: TAG_KEY_PATTERN,
    form: 'KEY=NUMBER',
    example: 'accuracy=0.93',
    checkValue: (v) => (/^[-+]?[0-9.eE+-]+$/.test(v) && Number.isFinite(Number(v)) ? undefined : `${JSON.stringify(v)} is not a number`),
  });

export const parseLabel = (label: string) =>
  parseKeyValue(label, {
    keyPattern: TAG_KEY_PATTERN,
    form: 'KEY=VALUE',
    example: 'site=lab',
    checkValue: (v) => (new RegExp(LABEL_VALUE_PATTERN).test(v) ? undefined : `value ${JSON.stringify(v)}: letters, digits, '.', '_', '-'`),
  });

export function parseDeviceId(label: string) {
  const re = new RegExp(DEVICE_ID_PATTERN);
  return (text: string): string => {
    if (!re.test(text)) throw inputError(`${label} ${JSON.stringify(text)}: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    return text;
  };
}

export const parseEnvVar = (label: string) => parseKeyValue(label, { keyPattern: ENV_NAME_PATTERN, form: 'NAME=VALUE', example: 'LOG_LEVEL=debug' });

/** Commander's argParser for a repeatable option: every occurrence is parsed and collected. */
export function repeatable<T>(parse: (text: string) => T): (text: string, previous: T[] | undefined) => T[] {
  return (text, previous) => [...(previous ?? []), parse(text)];
}

export const keyValueText = (kv: KeyValue): string => `${kv.key}=${kv.value}`;

export function keyValueRecord(label: string, pairs: KeyValue[]): Record<string, string> {
  const record = new Map<string, string>();
  for (const { key, value } of pairs) {
    if (record.has(key)) throw inputError(`${label} ${key} is given twice`);
    record.set(key, value);
  }
  return Object.fromEntries(record);
}

/** Which version selectors a command accepts after NAME. */
export type RefForm = 'bare' | 'number' | 'latest' | 'alias';

export interface ModelRef {
  name: string;
  /** In the hub's path syntax: `3`, `latest` or `@alias`; undefined for a bare NAME. */
  ref: string | undefined;
}

const FORM_SHAPES: Record<RefForm, [shape: string, example: string | undefined]> = {
  bare: ['NAME', undefined],
  number: ['NAME:VERSION', 'resnet50:3'],
  latest: ['NAME:latest', undefined],
  alias: ['NAME@ALIAS', 'resnet50@production'],
};

function describeForms(forms: readonly RefForm[]): string {
  const shapes = forms.map((f) => FORM_SHAPES[f][0]);
  const examples = forms.map((f) => FORM_SHAPES[f][1]).filter((e) => e !== undefined);
  const listed = shapes.length > 1 ? `${shapes.slice(0, -1).join(', ')} or ${shapes.at(-1)}` : shapes.join('');
  return examples.length ? `${listed}, e.g. ${examples.join(', ')}` : listed;
}

/** Parses `NAME`, `NAME:3`, `NAME:latest` or `NAME@ALIAS`, accepting only the given forms. */
export function parseModelRef(label: string, forms: readonly RefForm[]) {
  const nameRe = new RegExp(NAME_PATTERN);
  const aliasRe = new RegExp(ALIAS_PATTERN);
  return (text: string): ModelRef => {
    const fail = (why: string) => inputError(`${label} ${JSON.stringify(text)}: expected ${describeForms(forms)} (${why})`);
    const sep = text.search(/[:@]/);
    const name = sep < 0 ? text : text.slice(0, sep);
    const selector = sep < 0 ? undefined : text.slice(sep + 1);
    if (!nameRe.test(name)) throw fail(`NAME is ${NAME_RULE}`);
    if (selector === undefined) {
      if (!forms.includes('bare')) throw fail('a version is required');
      return { name, ref: undefined };
    }
    if (text[sep] === '@') {
      if (!forms.includes('alias')) throw fail('aliases are not accepted here');
      if (!aliasRe.test(selector)) throw fail(`ALIAS is ${ALIAS_RULE}`);
      return { name, ref: `@${selector}` };
    }
    if (selector === 'latest' && forms.includes('latest')) return { name, ref: 'latest' };
    if (!forms.includes('number') || !VERSION_RE.test(selector)) throw fail('VERSION is a number 1, 2, …');
    return { name, ref: selector };
  };
}

/** `resnet50:3`, `resnet50@production`, `resnet50:latest`: how a ref reads in messages. */
export function formatModelRef({ name, ref }: ModelRef): string {
  if (ref === undefined) return name;
  return ref.startsWith('@') ? `${name}${ref}` : `${name}:${ref}`;
}

const FS_PROBLEMS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
  ELOOP: 'too many symbolic links',
};

/** A local file the command cannot read, as CLI_INPUT_INVALID naming it; other errors pass unchanged. */
export function fileError(path: string, err: unknown, what = ''): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (err instanceof EdgemlError || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return err;
  return inputError(`${what}${path}: ${FS_PROBLEMS[code] ?? code}`, err);
}

/** A text file a flag names; an unreadable one is an error naming the flag and the path. */
export async function readText(flag: string, path: string): Promise<string> {
  return readFile(path, 'utf8').catch((err: unknown) => {
    throw fileError(path, err, `${flag} `);
  });
}

/** A text file as the API takes it: its base name (checked) and its content. */
export async function textFile(flag: string, path: string): Promise<{ filename: string; content: string }> {
  return { filename: checkFilename(path, basename(path)), content: await readText(flag, path) };
}
