/**
 * `edgeml serve`: a scoring service on a loopback port, with the runtime of the images, from a
 * manifest (its image, or its files when none is built yet) or from local files (reloaded when they
 * change). See cli/serve/.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Runtime } from '../../shared/api/manifests.js';
import { inputError, parseChoice, parseModelRef, parseName } from '../args.js';
import { clientAction, withClientOptions, type CliIo } from './client-command.js';

interface ServeFlags {
  manifest?: { name: string; version: number | undefined };
  runtime?: Runtime;
  score?: string;
  schema?: string;
  model?: Array<{ name: string; path: string }>;
  port: string;
  python: string;
  json?: boolean;
}

export const DEFAULT_SERVE_PORT = 8000;

function parseModelPath(text: string): { name: string; path: string } {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) throw inputError(`--model ${JSON.stringify(text)}: expected NAME=PATH, e.g. iris=./model.onnx`);
  return { name: parseName('--model NAME')(text.slice(0, eq)), path: text.slice(eq + 1) };
}

/** `--model` repeated: one per name, as a manifest has. */
function addModelPath(text: string, previous: Array<{ name: string; path: string }> = []): Array<{ name: string; path: string }> {
  const model = parseModelPath(text);
  const earlier = previous.find((m) => m.name === model.name);
  if (earlier) throw inputError(`--model ${model.name}= is given twice (${earlier.path} and ${model.path}): one path per model name`);
  return [...previous, model];
}

function parseManifest(text: string): { name: string; version: number | undefined } {
  const { name, ref } = parseModelRef('--manifest', ['bare', 'number', 'latest'])(text);
  return { name, version: ref === undefined || ref === 'latest' ? undefined : Number(ref) };
}

const FILE_FLAGS = ['runtime', 'score', 'schema', 'model'] as const;

export function addServeCommand(program: Command, io: CliIo): void {
  const command = program
    .command('serve')
    .description('serve a scoring service on 127.0.0.1 with the runtime of the images: a manifest version (its image, or its files when no image is built yet), or local files, reloaded when they change')
    .option('--manifest <name[:version]>', 'serve this manifest version (default: latest)', parseManifest)
    .option('--runtime <runtime>', 'serve local files with this runtime: node or python', parseChoice('--runtime', ['node', 'python'] as const))
    .option('--score <file>', 'the scoring file (score.js, score.mjs, score.cjs or score.py)')
    .option('--schema <file>', 'the schema document {"input", "output", "sample"}')
    .option('--model <name=path>', 'a model file or directory, laid out as $EDGEML_MODEL_DIR/NAME/ (repeatable)', addModelPath)
    .option('--port <port>', `loopback port; 0 picks a free one (default ${DEFAULT_SERVE_PORT})`, String(DEFAULT_SERVE_PORT))
    .option('--python <bin>', 'the Python interpreter for the python runtime', 'python3');
  withClientOptions(command);
  command.action(async (...params: unknown[]) => {
    const flags = (params.at(-1) as Command).opts<ServeFlags>();
    const { parsePort, serve } = await import('../serve/session.js');
    const port = parsePort(flags.port);
    const out = { json: flags.json === true, stdout: io.stdout, stderr: io.stderr };
    if (flags.manifest) {
      const given = FILE_FLAGS.filter((f) => flags[f] !== undefined);
      if (given.length) throw inputError(`--manifest serves the manifest's own files: drop ${given.map((f) => `--${f}`).join(', ')}`);
      const manifest = flags.manifest;
      await clientAction(io, async (ctx) => {
        const { manifestTarget } = await import('../serve/manifest-target.js');
        await serve(await manifestTarget(ctx, manifest, flags.python), { port, signal: ctx.signal, out });
      })(...params);
      return;
    }
    if (!flags.runtime || !flags.score || !flags.schema) {
      throw inputError('edgeml serve needs --manifest NAME[:VERSION], or --runtime node|python with --score FILE and --schema FILE (and --model NAME=PATH for each model)');
    }
    const { filesTarget } = await import('../serve/files-target.js');
    const models = (flags.model ?? []).map((m) => ({ name: m.name, path: resolve(io.cwd, m.path) }));
    const target = await filesTarget({ runtime: flags.runtime, score: resolve(io.cwd, flags.score), schema: resolve(io.cwd, flags.schema), models, python: flags.python, watch: true });
    await serve(target, { port, signal: io.interruptSignal(), out });
  });
}
