/**
 * `edgeml manifest …`: the recipe for a scoring image (models, runtime, scoring script, schema,
 * dependencies, env), versioned like models.
 */
import type { Command } from 'commander';
import { RUNTIMES, type ManifestCreate, type ManifestVersion, type Runtime } from '../../shared/api/manifests.js';
import {
  formatModelRef,
  inputError,
  keyValueRecord,
  parseChoice,
  parseEnvVar,
  parseModelRef,
  parseName,
  readText,
  repeatable,
  textFile,
  type KeyValue,
  type ModelRef,
} from '../args.js';
import { formatBytes } from '../../shared/size.js';
import { formatList, formatPairs, formatTime, renderFields, renderTable, shortDigest } from '../output.js';
import { addClientOptions, clientAction, type CliIo } from './client-command.js';

interface CreateFlags {
  model: ModelRef[];
  runtime: Runtime;
  score: string;
  schema: string;
  deps?: string;
  env?: KeyValue[];
  description?: string;
}

async function schemaFile(path: string): Promise<unknown> {
  const text = await readText('--schema', path);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw inputError(`--schema ${path}: not valid JSON (${(err as Error).message})`, err);
  }
}

export async function manifestBody(flags: CreateFlags): Promise<ManifestCreate> {
  return {
    models: flags.model.map(formatModelRef),
    runtime: flags.runtime,
    score: await textFile('--score', flags.score),
    schema: await schemaFile(flags.schema),
    ...(flags.deps === undefined ? {} : { deps: await textFile('--deps', flags.deps) }),
    ...(flags.env === undefined ? {} : { env: keyValueRecord('--env', flags.env) }),
    ...(flags.description === undefined ? {} : { description: flags.description }),
  };
}

const modelList = (m: ManifestVersion): string => formatList(m.models.map((x) => `${x.name}:${x.version}`));

export function renderManifestList(versions: readonly ManifestVersion[]): string {
  return renderTable(
    ['NAME', 'VERSION', 'DIGEST', 'RUNTIME', 'MODELS', 'CREATED'],
    versions.map((m) => [m.name, String(m.version), shortDigest(m.digest), m.runtime, modelList(m), formatTime(m.createdAt)]),
    '(no manifests)',
  );
}

/** Long JSON is cut: the full schema is in `--json`. */
function compactJson(value: unknown, max = 100): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function renderManifest(m: ManifestVersion): string {
  const file = (f: { filename: string; size: number; digest: string }) => `${f.filename}  ${formatBytes(f.size)}  ${shortDigest(f.digest)}`;
  return renderFields([
    ['manifest', `${m.name}:${m.version}`],
    ['digest', m.digest],
    ['runtime', m.runtime],
    ['models', m.models.map((x) => `${x.name}:${x.version} (${shortDigest(x.digest)})`).join(', ')],
    ['score', file(m.score)],
    ['deps', m.deps ? file(m.deps) : '-'],
    ['env', formatPairs(m.env)],
    ['description', m.description || undefined],
    ['input', compactJson(m.schema.input)],
    ['output', compactJson(m.schema.output)],
    ['sample', compactJson(m.schema.sample)],
    ['created', `${m.createdAt} by ${m.createdBy.keyName} (key ${m.createdBy.keyId})`],
  ]);
}

export function addManifestCommands(program: Command, io: CliIo): void {
  const manifest = program.command('manifest').description('image recipes: models, runtime, scoring script, schema');

  manifest
    .command('create')
    .description('create a new manifest version')
    .argument('<name>', 'manifest name', parseName('NAME'))
    .requiredOption('--model <ref>', 'NAME:VERSION or NAME@ALIAS (pinned at creation); repeat for several', repeatable(parseModelRef('--model', ['number', 'alias'])))
    .requiredOption('--runtime <runtime>', RUNTIMES.join(' or '), parseChoice('--runtime', RUNTIMES))
    .requiredOption('--score <file>', 'scoring script (exports init() and run(input))')
    .requiredOption('--schema <file>', 'JSON file {"input": JSON Schema, "output": JSON Schema, "sample": …}')
    .option('--deps <file>', 'dependency file (package.json or requirements.txt)')
    .option('--env <name=value>', 'environment variable for the scoring container; repeat for several', repeatable(parseEnvVar('--env')))
    .option('--description <text>', 'what this manifest is')
    .action(
      clientAction<[string], CreateFlags>(io, async (ctx, [name], flags) => {
        const body = await manifestBody(flags);
        const m = await ctx.client.call('registerManifestVersion', { params: { name }, body });
        ctx.out.result(m, () => `created manifest ${m.name}:${m.version}  ${m.digest}`);
      }),
    );

  manifest
    .command('list')
    .description('list manifest versions')
    .option('--name <name>', 'only this manifest', parseName('--name'))
    .action(
      clientAction<[], { name?: string }>(io, async (ctx, _args, flags) => {
        const list = await ctx.client.call('listManifestVersions', { query: { name: flags.name } });
        ctx.out.result(list, () => renderManifestList(list.versions));
      }),
    );

  manifest
    .command('show')
    .description('one manifest version in detail (default: the latest)')
    .argument('<manifest>', 'NAME, NAME:VERSION or NAME:latest', parseModelRef('MANIFEST', ['bare', 'number', 'latest']))
    .action(
      clientAction<[ModelRef], object>(io, async (ctx, [ref]) => {
        const m = await ctx.client.call('getManifestVersion', { params: { name: ref.name, ref: ref.ref ?? 'latest' } });
        ctx.out.result(m, () => renderManifest(m));
      }),
    );

  addClientOptions(manifest);
}
