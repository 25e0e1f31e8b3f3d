/**
 * Command-line value parsers (cli/args.ts) and the client's configuration (cli/client-config.ts):
 * what is accepted, and that a refusal is CLI_INPUT_INVALID (or CONFIG_INVALID) naming the flag and
 * the expected form. Only the config-file case touches the filesystem (a temp file, removed after).
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkFilename,
  fileError,
  formatModelRef,
  keyValueRecord,
  parseAlias,
  parseApiKeyName,
  parseChoice,
  parseEnvVar,
  parseFramework,
  parseMetric,
  parseModelRef,
  parseName,
  parseTag,
  parseVersion,
  repeatable,
} from '../../cli/args.js';
import { DEFAULT_HUB_URL, loadClientConfig } from '../../cli/client-config.js';
import { SCOPES } from '../../shared/api/common.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

/** Runs `fn`, expects CLI_INPUT_INVALID, and returns the message. */
function inputErrorMessage(t: ExecutionContext, fn: () => unknown): string {
  const err = t.throws(fn, { instanceOf: EdgemlError });
  t.is(err?.code, ErrorCodes.CLI_INPUT_INVALID);
  return err?.message ?? '';
}

// --- KEY=VALUE -------------------------------------------------------------------------------

test('--tag takes KEY=VALUE; the value may be empty or contain "="', (t) => {
  const parse = parseTag('--tag');
  t.deepEqual(parse('team=vision'), { key: 'team', value: 'vision' });
  t.deepEqual(parse('note='), { key: 'note', value: '' });
  t.deepEqual(parse('expr=a=b'), { key: 'expr', value: 'a=b' });
  t.deepEqual(parse('k8s.io/zone=eu-1'), { key: 'k8s.io/zone', value: 'eu-1' });
});

test('--tag without "=" or with a bad key names the flag and the expected form', (t) => {
  const parse = parseTag('--tag');
  t.regex(inputErrorMessage(t, () => parse('novalue')), /^--tag "novalue": expected KEY=VALUE, e\.g\. team=vision \(no "="\)$/);
  t.regex(inputErrorMessage(t, () => parse('=x')), /--tag "=x".*bad key ""/);
  t.regex(inputErrorMessage(t, () => parse('-k=x')), /bad key "-k"/);
});

test('--metric needs a number', (t) => {
  const parse = parseMetric('--metric');
  t.deepEqual(parse('accuracy=0.93'), { key: 'accuracy', value: '0.93' });
  t.deepEqual(parse('loss=-1.5e-3'), { key: 'loss', value: '-1.5e-3' });
  t.regex(inputErrorMessage(t, () => parse('accuracy=high')), /--metric "accuracy=high": expected KEY=NUMBER.*"high" is not a number/);
  t.regex(inputErrorMessage(t, () => parse('accuracy=')), /is not a number/);
  t.regex(inputErrorMessage(t, () => parse('accuracy=1.2.3')), /is not a number/);
});

test('--env takes NAME=VALUE with an environment variable name', (t) => {
  const parse = parseEnvVar('--env');
  t.deepEqual(parse('LOG_LEVEL=debug'), { key: 'LOG_LEVEL', value: 'debug' });
  t.regex(inputErrorMessage(t, () => parse('1X=a')), /--env "1X=a": expected NAME=VALUE/);
});

test('repeatable collects every occurrence in order', (t) => {
  const collect = repeatable(parseTag('--tag'));
  const first = collect('a=1', undefined);
  t.deepEqual(collect('b=2', first), [
    { key: 'a', value: '1' },
    { key: 'b', value: '2' },
  ]);
  t.deepEqual(first, [{ key: 'a', value: '1' }], 'the previous array is not mutated');
});

test('keyValueRecord refuses a key given twice', (t) => {
  t.deepEqual(keyValueRecord('--env', [{ key: 'A', value: '1' }, { key: 'B', value: '' }]), { A: '1', B: '' });
  t.regex(inputErrorMessage(t, () => keyValueRecord('--env', [{ key: 'A', value: '1' }, { key: 'A', value: '2' }])), /--env A is given twice/);
});

// --- model references -----------------------------------------------------------------------

test('model refs: NAME, NAME:VERSION, NAME:latest and NAME@ALIAS in the hub path syntax', (t) => {
  const parse = parseModelRef('MODEL', ['bare', 'number', 'latest', 'alias']);
  t.deepEqual(parse('resnet50'), { name: 'resnet50', ref: undefined });
  t.deepEqual(parse('resnet50:3'), { name: 'resnet50', ref: '3' });
  t.deepEqual(parse('resnet50:latest'), { name: 'resnet50', ref: 'latest' });
  t.deepEqual(parse('fraud-detector.v2@production'), { name: 'fraud-detector.v2', ref: '@production' });
});

test('a bad model ref names the argument, the accepted forms and what is wrong', (t) => {
  const parse = parseModelRef('MODEL', ['bare', 'number', 'latest', 'alias']);
  const upper = inputErrorMessage(t, () => parse('Model:0'));
  t.regex(upper, /^MODEL "Model:0": expected NAME, NAME:VERSION, NAME:latest or NAME@ALIAS, e\.g\. resnet50:3, resnet50@production/);
  t.regex(upper, /NAME is 1–64 lowercase/);
  t.regex(inputErrorMessage(t, () => parse('model:0')), /VERSION is a number/);
  t.regex(inputErrorMessage(t, () => parse('model:01')), /VERSION is a number/);
  t.regex(inputErrorMessage(t, () => parse('model@latest')), /ALIAS is/);
  t.regex(inputErrorMessage(t, () => parse('model@3')), /ALIAS is/);
  t.regex(inputErrorMessage(t, () => parse('')), /NAME is/);
  t.regex(inputErrorMessage(t, () => parse('a:1:2')), /VERSION is a number/);
});

test('model refs accept only the forms a command allows', (t) => {
  const pinned = parseModelRef('--model', ['number', 'alias']);
  t.deepEqual(pinned('m@staging'), { name: 'm', ref: '@staging' });
  t.regex(inputErrorMessage(t, () => pinned('m')), /^--model "m": expected NAME:VERSION or NAME@ALIAS.*a version is required/);
  t.regex(inputErrorMessage(t, () => pinned('m:latest')), /VERSION is a number/);

  const versionOnly = parseModelRef('MODEL', ['number']);
  t.regex(inputErrorMessage(t, () => versionOnly('m@prod')), /expected NAME:VERSION, e\.g\. resnet50:3 \(aliases are not accepted here\)/);

  const manifest = parseModelRef('MANIFEST', ['bare', 'number', 'latest']);
  t.deepEqual(manifest('m:latest'), { name: 'm', ref: 'latest' });
  t.regex(inputErrorMessage(t, () => manifest('m@prod')), /aliases are not accepted/);
});

test('formatModelRef reads back as typed', (t) => {
  const parse = parseModelRef('MODEL', ['bare', 'number', 'latest', 'alias']);
  for (const text of ['resnet50', 'resnet50:3', 'resnet50:latest', 'resnet50@production']) t.is(formatModelRef(parse(text)), text);
});

// --- single values --------------------------------------------------------------------------

test('names, aliases, versions, frameworks and key names follow the REST contract', (t) => {
  t.is(parseName('NAME')('resnet50'), 'resnet50');
  t.regex(inputErrorMessage(t, () => parseName('NAME')('ResNet')), /^NAME "ResNet": expected a name of 1–64 lowercase/);
  t.is(parseAlias('ALIAS')('production'), 'production');
  t.regex(inputErrorMessage(t, () => parseAlias('ALIAS')('latest')), /"latest" is reserved/);
  t.is(parseVersion('VERSION')('12'), 12);
  for (const bad of ['0', '-1', '1.5', 'x', '']) t.regex(inputErrorMessage(t, () => parseVersion('VERSION')(bad)), /expected a version number/);
  t.is(parseFramework('--framework')('onnx'), 'onnx');
  t.regex(inputErrorMessage(t, () => parseFramework('--framework')('ONNX')), /^--framework "ONNX"/);
  t.is(parseApiKeyName('--name')('ci pipeline@x'), 'ci pipeline@x');
  t.regex(inputErrorMessage(t, () => parseApiKeyName('--name')(' lead')), /^--name " lead"/);
});

test('--scope accepts exactly the contract scopes', (t) => {
  const parse = parseChoice('--scope', SCOPES);
  for (const s of SCOPES) t.is(parse(s), s);
  t.is(inputErrorMessage(t, () => parse('root')), '--scope "root": expected one of read, deploy, admin');
});

test('checkFilename refuses names the hub cannot store, naming the path', (t) => {
  t.is(checkFilename('/m/model.onnx', 'model.onnx'), 'model.onnx');
  t.regex(inputErrorMessage(t, () => checkFilename('/m/my model.onnx', 'my model.onnx')), /^\/m\/my model\.onnx: the file name "my model\.onnx" must be/);
});

test('fileError turns errno failures into CLI_INPUT_INVALID naming the file, and passes others', (t) => {
  const enoent = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  const err = fileError('score.js', enoent, '--score ') as EdgemlError;
  t.is(err.code, ErrorCodes.CLI_INPUT_INVALID);
  t.is(err.message, '--score score.js: no such file or directory');
  t.is(err.cause, enoent);
  const other = new Error('boom');
  t.is(fileError('x', other), other);
  const edgeml = new EdgemlError(ErrorCodes.ARCHIVE_INVALID, 'bad link');
  t.is(fileError('x', edgeml), edgeml);
});

// --- client configuration -------------------------------------------------------------------

test('client config: default hub, no key required', (t) => {
  t.deepEqual({ ...loadClientConfig({ flags: {}, env: {} }) }, { hub: DEFAULT_HUB_URL });
});

test('client config: flags beat EDGEML_HUB / EDGEML_API_KEY, which beat the file named by EDGEML_CONFIG', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeml-client-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'client.json');
  writeFileSync(file, JSON.stringify({ hub: 'http://file:1', apiKey: 'file-key' }));

  t.deepEqual({ ...loadClientConfig({ flags: {}, env: { EDGEML_CONFIG: file } }) }, { hub: 'http://file:1', apiKey: 'file-key' });
  const env = { EDGEML_CONFIG: file, EDGEML_HUB: 'http://env:2', EDGEML_API_KEY: 'env-key' };
  t.deepEqual({ ...loadClientConfig({ flags: {}, env }) }, { hub: 'http://env:2', apiKey: 'env-key' });
  t.deepEqual({ ...loadClientConfig({ flags: { hub: 'https://flag:3/edgeml', apiKey: 'flag-key' }, env }) }, { hub: 'https://flag:3/edgeml', apiKey: 'flag-key' });
});

test("client config ignores other processes' EDGEML_* variables", (t) => {
  const env = { EDGEML_HUB_HTTP: '0.0.0.0:1', EDGEML_AGENT_TOKEN: 'secret', EDGEML_HUB_CONFIG: '/nonexistent.json', EDGEML_API_KEY: 'k' };
  t.deepEqual({ ...loadClientConfig({ flags: {}, env }) }, { hub: DEFAULT_HUB_URL, apiKey: 'k' });
});

test('client config refuses a hub that is not an http(s) URL, or carries credentials', (t) => {
  for (const hub of ['localhost:8080', 'ftp://h', 'http://user:pw@h:1', 'http://h:1?x=1']) {
    const err = t.throws(() => loadClientConfig({ flags: { hub }, env: {} }), { instanceOf: EdgemlError });
    t.is(err?.code, ErrorCodes.CONFIG_INVALID, hub);
    t.regex(err?.message ?? '', /hub: must look like "http:\/\/127\.0\.0\.1:8080" \(from flag --hub\)/);
  }
});
