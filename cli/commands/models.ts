/**
 * `edgeml model …`: register, list, show, alias, unalias, delete and download model versions, and
 * find where they run and where they came from.
 */
import type { Command } from 'commander';
import {
  formatModelRef,
  keyValueText,
  parseAlias,
  parseFramework,
  parseMetric,
  parseModelRef,
  parseName,
  parseTag,
  parseVersion,
  repeatable,
  type KeyValue,
  type ModelRef,
} from '../args.js';
import { addClientOptions, clientAction, type CliIo } from './client-command.js';
import { downloadModel, renderDownloaded } from './model-download.js';
import { registerModel } from './model-register.js';
import { renderModelLineage, renderModelSummary, renderModelVersion, renderRegistered, renderVersionList } from './model-views.js';
import { renderModelWhere } from './where-views.js';

interface RegisterFlags {
  framework?: string;
  description?: string;
  tag?: KeyValue[];
  runId?: string;
  dataset?: string;
  metric?: KeyValue[];
}

const texts = (pairs: KeyValue[] | undefined): string[] => (pairs ?? []).map(keyValueText);

export function addModelCommands(program: Command, io: CliIo): void {
  const model = program.command('model').description('the model registry: versions, aliases, downloads');

  model
    .command('register')
    .description('upload a model file, or a directory as a tar stream, as a new version')
    .argument('<name>', 'model name, e.g. resnet50', parseName('NAME'))
    .argument('<path>', 'a model file or a directory')
    .option('--framework <name>', 'framework (default: onnx for .onnx, tflite for .tflite, else the hub decides)', parseFramework('--framework'))
    .option('--description <text>', 'what this version is')
    .option('--tag <key=value>', 'a tag; repeat for several', repeatable(parseTag('--tag')))
    .option('--run-id <id>', 'training run that produced the model')
    .option('--dataset <ref>', 'dataset it was trained on (URI, name@version, …)')
    .option('--metric <key=number>', 'a metric, e.g. accuracy=0.93; repeat for several', repeatable(parseMetric('--metric')))
    .action(
      clientAction<[string, string], RegisterFlags>(io, async (ctx, [name, path], flags) => {
        const v = await registerModel(ctx, name, path, {
          framework: flags.framework,
          description: flags.description,
          tags: texts(flags.tag),
          runId: flags.runId,
          dataset: flags.dataset,
          metrics: texts(flags.metric),
        });
        ctx.out.result(v, () => renderRegistered(v));
      }),
    );

  model
    .command('list')
    .description('list model versions (by name, then version)')
    .option('--name <name>', 'only this model', parseName('--name'))
    .option('--tag <key=value>', 'only versions with this tag; repeat to require several', repeatable(parseTag('--tag')))
    .action(
      clientAction<[], { name?: string; tag?: KeyValue[] }>(io, async (ctx, _args, flags) => {
        const list = await ctx.client.call('listModelVersions', { query: { name: flags.name, tag: texts(flags.tag) } });
        ctx.out.result(list, () => renderVersionList(list.versions));
      }),
    );

  model
    .command('show')
    .description('a model (aliases and versions), or one version in detail')
    .argument('<model>', 'NAME, NAME:VERSION, NAME:latest or NAME@ALIAS', parseModelRef('MODEL', ['bare', 'number', 'latest', 'alias']))
    .action(
      clientAction<[ModelRef], object>(io, async (ctx, [ref]) => {
        if (ref.ref === undefined) {
          const summary = await ctx.client.call('getModel', { params: { name: ref.name } });
          ctx.out.result(summary, () => renderModelSummary(summary));
        } else {
          const v = await ctx.client.call('getModelVersion', { params: { name: ref.name, ref: ref.ref } });
          ctx.out.result(v, () => renderModelVersion(v));
        }
      }),
    );

  model
    .command('alias')
    .description('point an alias (e.g. production) at a version; moves it if it exists')
    .argument('<name>', 'model name', parseName('NAME'))
    .argument('<alias>', 'alias, e.g. production', parseAlias('ALIAS'))
    .argument('<version>', 'version number', parseVersion('VERSION'))
    .action(
      clientAction<[string, string, number], object>(io, async (ctx, [name, alias, version]) => {
        const r = await ctx.client.call('setModelAlias', { params: { name, alias }, body: { version } });
        const was = r.previous === null ? 'new' : r.previous === r.version ? 'unchanged' : `was ${r.previous}`;
        ctx.out.result(r, () => `${r.name}@${r.alias} → ${r.version} (${was})`);
      }),
    );

  model
    .command('unalias')
    .description('remove an alias (the version stays)')
    .argument('<name>', 'model name', parseName('NAME'))
    .argument('<alias>', 'alias', parseAlias('ALIAS'))
    .action(
      clientAction<[string, string], object>(io, async (ctx, [name, alias]) => {
        await ctx.client.call('deleteModelAlias', { params: { name, alias } });
        ctx.out.result({ name, alias, removed: true }, () => `removed alias ${name}@${alias}`);
      }),
    );

  model
    .command('delete')
    .description('delete a version (refused while a manifest or alias uses it)')
    .argument('<model>', 'NAME:VERSION', parseModelRef('MODEL', ['number']))
    .action(
      clientAction<[ModelRef], object>(io, async (ctx, [ref]) => {
        const version = Number(ref.ref);
        await ctx.client.call('deleteModelVersion', { params: { name: ref.name, ref: version } });
        ctx.out.result({ name: ref.name, version, deleted: true }, () => `deleted ${formatModelRef(ref)}`);
      }),
    );

  model
    .command('download')
    .description("fetch a version's file (or directory) and check its digest")
    .argument('<model>', 'NAME (latest), NAME:VERSION or NAME@ALIAS', parseModelRef('MODEL', ['bare', 'number', 'latest', 'alias']))
    .option('--out <path>', 'where to write (default: the file name, or NAME-VERSION/ for a directory model, in the current directory)')
    .action(
      clientAction<[ModelRef], { out?: string }>(io, async (ctx, [ref], flags) => {
        const r = await downloadModel(ctx, ref, flags.out);
        ctx.out.result(r, () => renderDownloaded(r, ref));
      }),
    );

  model
    .command('where')
    .description('the devices and services running a model (any version, or VERSION), from what devices report')
    .argument('<model>', 'NAME or NAME:VERSION', parseModelRef('MODEL', ['bare', 'number']))
    .action(
      clientAction<[ModelRef], object>(io, async (ctx, [ref]) => {
        const where = await ctx.client.call('getModelWhere', { params: { name: ref.name }, query: { version: ref.ref === undefined ? undefined : Number(ref.ref) } });
        ctx.out.result(where, () => renderModelWhere(where));
      }),
    );

  model
    .command('lineage')
    .description('a version from dataset to devices: training, the manifests that include it, their image builds, the devices serving it')
    .argument('<model>', 'NAME (latest), NAME:VERSION or NAME@ALIAS', parseModelRef('MODEL', ['bare', 'number', 'latest', 'alias']))
    .action(
      clientAction<[ModelRef], object>(io, async (ctx, [ref]) => {
        const lineage = await ctx.client.call('getModelLineage', { params: { name: ref.name, ref: ref.ref ?? 'latest' } });
        ctx.out.result(lineage, () => renderModelLineage(lineage));
      }),
    );

  addClientOptions(model);
}
