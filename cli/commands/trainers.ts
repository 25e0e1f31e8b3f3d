/**
 * `edgeml trainer …`: training recipes (runtime, training script, dependencies, env), versioned
 * like manifests. The hub builds each version into an image for its own platform; `create` waits
 * for that build (showing its progress) unless --no-wait.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { RUNTIMES, type Runtime } from '../../shared/api/manifests.js';
import type { TrainerCreate, TrainerVersion } from '../../shared/api/trainers.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { formatBytes } from '../../shared/size.js';
import { keyValueRecord, parseChoice, parseEnvVar, parseModelRef, parseName, repeatable, type KeyValue, type ModelRef, textFile } from '../args.js';
import { formatPairs, formatTime, renderFields, renderTable, shortDigest } from '../output.js';
import { addClientOptions, clientAction, type ClientContext, type CliIo } from './client-command.js';
import { pollInterval } from './images.js';

interface CreateFlags {
  runtime: Runtime;
  train: string;
  deps?: string;
  env?: KeyValue[];
  description?: string;
  wait: boolean;
  logs?: boolean;
}

async function trainerBody(flags: Omit<CreateFlags, 'wait' | 'logs'>): Promise<TrainerCreate> {
  return {
    runtime: flags.runtime,
    train: await textFile('--train', flags.train),
    ...(flags.deps === undefined ? {} : { deps: await textFile('--deps', flags.deps) }),
    ...(flags.env === undefined ? {} : { env: keyValueRecord('--env', flags.env) }),
    ...(flags.description === undefined ? {} : { description: flags.description }),
  };
}

const imageState = (t: TrainerVersion): string => (t.image.status === 'succeeded' ? 'built' : t.image.status);

function renderTrainerList(versions: readonly TrainerVersion[]): string {
  return renderTable(
    ['NAME', 'VERSION', 'DIGEST', 'RUNTIME', 'IMAGE', 'CREATED'],
    versions.map((t) => [t.name, String(t.version), shortDigest(t.digest), t.runtime, imageState(t), formatTime(t.createdAt)]),
    '(no trainers)',
  );
}

function renderTrainer(t: TrainerVersion): string {
  const file = (f: { filename: string; size: number; digest: string }) => `${f.filename}  ${formatBytes(f.size)}  ${shortDigest(f.digest)}`;
  const progress = t.image.progress ? ` (${t.image.progress.stepsDone}/${t.image.progress.stepsTotal} steps: ${t.image.progress.current})` : '';
  return renderFields([
    ['trainer', `${t.name}:${t.version}`],
    ['digest', t.digest],
    ['runtime', t.runtime],
    ['train', file(t.train)],
    ['deps', t.deps ? file(t.deps) : '-'],
    ['env', formatPairs(t.env)],
    ['description', t.description || undefined],
    ['image', `${t.image.status}${progress}`],
    ['ref', t.image.ref ?? undefined],
    ['platform', t.image.platform],
    ['error', t.image.error ? `${t.image.error.code}: ${t.image.error.message}` : undefined],
    ['created', `${t.createdAt} by ${t.createdBy.keyName} (key ${t.createdBy.keyId})`],
  ]);
}

const finished = (t: TrainerVersion) => t.image.status === 'succeeded' || t.image.status === 'failed';

/** One stderr line per change of the build's state, so CI logs show the progress too. */
function progressLine(t: TrainerVersion): string {
  const p = t.image.progress;
  return `trainer ${t.name}:${t.version}: ${t.image.status}${p ? `: ${p.current}${p.stepsTotal ? ` (${p.stepsDone}/${p.stepsTotal} steps)` : ''}` : ''}`;
}

/** Writes the build log to `out`; with `follow`, until the build ends (the hub ends the answer). */
async function copyLog(ctx: ClientContext, name: string, version: string | number, follow: boolean, out: NodeJS.WritableStream): Promise<void> {
  const log = await ctx.client.call('getTrainerLog', { params: { name, ref: String(version) }, query: { follow: follow || undefined } });
  for await (const chunk of log.body) if (!out.write(chunk as Buffer)) await once(out, 'drain', { signal: ctx.signal });
}

async function waitForBuild(ctx: ClientContext, created: TrainerVersion, logs: boolean): Promise<TrainerVersion> {
  const pollMs = pollInterval(ctx.io.env);
  const get = () => ctx.client.call('getTrainerVersion', { params: { name: created.name, ref: String(created.version) } });
  let current = created;
  let shown = '';
  try {
    if (logs) await copyLog(ctx, created.name, created.version, true, ctx.io.stderr);
    for (;;) {
      if (!logs && !ctx.out.json) {
        const line = progressLine(current);
        if (line !== shown) ctx.io.stderr.write(`${line}\n`);
        shown = line;
      }
      if (finished(current)) return current;
      await sleep(pollMs, undefined, { signal: ctx.signal });
      current = await get();
    }
  } catch (err) {
    if (ctx.signal.aborted) {
      throw new EdgemlError(ErrorCodes.CLI_INTERRUPTED, `stopped waiting; trainer ${created.name}:${created.version} is still building on the hub (edgeml trainer show ${created.name}:${created.version})`, { cause: err });
    }
    throw err;
  }
}

export function addTrainerCommands(program: Command, io: CliIo): void {
  const trainer = program.command('trainer').description('training recipes, built into an image for the hub platform');

  trainer
    .command('create')
    .description('create a new trainer version and build its image; waits for the build unless --no-wait')
    .argument('<name>', 'trainer name', parseName('NAME'))
    .requiredOption('--runtime <runtime>', RUNTIMES.join(' or '), parseChoice('--runtime', RUNTIMES))
    .requiredOption('--train <file>', 'training script (train.js / train.mjs for node, train.py for python)')
    .option('--deps <file>', 'dependency file (package.json or requirements.txt)')
    .option('--env <name=value>', 'environment variable for the training container; repeat for several', repeatable(parseEnvVar('--env')))
    .option('--description <text>', 'what this trainer is')
    .option('--no-wait', 'print the new version (image queued) and return')
    .option('--logs', 'stream the build log to stderr while waiting')
    .action(
      clientAction<[string], CreateFlags>(io, async (ctx, [name], flags) => {
        const body = await trainerBody(flags);
        const created = await ctx.client.call('registerTrainerVersion', { params: { name }, body });
        const result = flags.wait ? await waitForBuild(ctx, created, flags.logs === true) : created;
        ctx.out.result(result, () => `created trainer ${result.name}:${result.version}  ${result.digest}\nimage ${result.image.status}${result.image.ref ? `  ${result.image.ref}` : ''}`);
        if (result.image.status === 'failed') {
          throw new EdgemlError(ErrorCodes.HUB_BUILD_FAILED, `the image of trainer ${result.name}:${result.version} failed: ${result.image.error?.message ?? 'no reason given'} (edgeml trainer logs ${result.name}:${result.version})`);
        }
      }),
    );

  trainer
    .command('list')
    .description('list trainer versions')
    .argument('[name]', 'only this trainer', parseName('NAME'))
    .action(
      clientAction<[string | undefined], object>(io, async (ctx, [name]) => {
        const list = await ctx.client.call('listTrainers', { query: { name } });
        ctx.out.result(list, () => renderTrainerList(list.versions));
      }),
    );

  trainer
    .command('show')
    .description('one trainer version in detail, with its image (default: the latest)')
    .argument('<trainer>', 'NAME, NAME:VERSION or NAME:latest', parseModelRef('TRAINER', ['bare', 'number', 'latest']))
    .action(
      clientAction<[ModelRef], object>(io, async (ctx, [ref]) => {
        const t = await ctx.client.call('getTrainerVersion', { params: { name: ref.name, ref: ref.ref ?? 'latest' } });
        ctx.out.result(t, () => renderTrainer(t));
      }),
    );

  trainer
    .command('logs')
    .description("the build log of a trainer version's image; --follow streams it until the build ends")
    .argument('<trainer>', 'NAME, NAME:VERSION or NAME:latest', parseModelRef('TRAINER', ['bare', 'number', 'latest']))
    .option('--follow', 'keep streaming until the build ends')
    .action(
      clientAction<[ModelRef], { follow?: boolean }>(io, async (ctx, [ref], flags) => {
        await copyLog(ctx, ref.name, ref.ref ?? 'latest', flags.follow === true, ctx.io.stdout);
      }),
    );

  addClientOptions(trainer);
}
