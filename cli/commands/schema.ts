/**
 * `edgeml schema infer SAMPLE.json [--output-sample OUT.json] [--decode]`: prints a scoring schema
 * document `{input, output, sample}` inferred from examples (shared/schema-infer.ts), checked the
 * way the hub checks a manifest's schema.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { fileError, inputError } from '../args.js';
import type { CliIo } from './client-command.js';

async function readJson(path: string, flag: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw fileError(path, err, flag);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw inputError(`${flag}${path}: not JSON: ${(err as Error).message}`, err);
  }
}

export function addSchemaCommands(program: Command, io: CliIo): void {
  const schema = program.command('schema').description('scoring schema documents ({"input", "output", "sample"})');
  schema
    .command('infer')
    .description('infer schema.json from an example input (and output): numbers, integers, arrays with their lengths, nested objects, base64 strings and images')
    .argument('<sample>', 'a JSON file holding one example input; it becomes the schema\'s "sample"')
    .option('--output-sample <file>', 'a JSON file holding an example output (default: any output is accepted)')
    .option('--decode', 'mark number tensors "x-edgeml-decode": "ndarray" and arrays of flat records "dataframe" (score.py gets numpy arrays / pandas DataFrames)')
    .action(async (sampleFile: string, flags: { outputSample?: string; decode?: boolean }) => {
      const sample = await readJson(resolve(io.cwd, sampleFile), '');
      const output = flags.outputSample === undefined ? undefined : await readJson(resolve(io.cwd, flags.outputSample), '--output-sample ');
      const [{ inferScoringSchema }, { checkScoringSchema }] = await Promise.all([import('../../shared/schema-infer.js'), import('../../hub/registry/scoring-schema.js')]);
      const doc = inferScoringSchema(sample, output, { decode: flags.decode === true });
      // What the hub would refuse at `manifest create` is a bug here, not the user's problem.
      checkScoringSchema(doc);
      io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    });
}
