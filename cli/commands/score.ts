/**
 * `edgeml score SERVICE --device ID --input FILE`: asks the hub where the device's gateway is, then
 * scores the input there with the service key, and prints the answer.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { request } from 'undici';
import type { Device } from '../../shared/api/devices.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { fileError, inputError, parseDeviceId } from '../args.js';
import { apiPath } from '../hub-client.js';
import { clientAction, withClientOptions, type CliIo } from './client-command.js';
import { parseService } from './deployments.js';

interface ScoreFlags {
  device: string;
  input: string;
  key?: string;
}

export const SERVICE_KEY_ENV = 'EDGEML_SERVICE_KEY';

export function addScoreCommand(program: Command, io: CliIo): void {
  const score = program
    .command('score')
    .description("score an input on a device, through its gateway (the hub says where it is)")
    .argument('<service>', 'service name', parseService)
    .requiredOption('--device <id>', 'the device to score on', parseDeviceId('--device'))
    .requiredOption('--input <file>', 'JSON input, or - for stdin')
    .option('--key <key>', `the service API key from \`edgeml deploy\` (prefer ${SERVICE_KEY_ENV}: flags show in ps)`)
    .action(
      clientAction<[string], ScoreFlags>(io, async (ctx, [service], flags) => {
        const key = flags.key ?? io.env[SERVICE_KEY_ENV];
        if (!key) throw inputError(`give the service key: ${SERVICE_KEY_ENV}=… or --key`);
        const text = flags.input === '-' ? await readStdin() : await readFile(flags.input, 'utf8').catch((err: unknown) => Promise.reject(fileError(flags.input, err, '--input ')));
        try {
          JSON.parse(text);
        } catch (err) {
          throw inputError(`--input ${flags.input}: not valid JSON (${(err as Error).message})`, err);
        }
        const device = await ctx.client.json<Device>('GET', apiPath('devices', flags.device));
        if (!device.gateway) throw new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, `device ${device.id} has not reported a gateway (status ${device.status})`);
        const url = `${device.gateway}/v1/services/${service}/score`;
        const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: text, signal: ctx.signal }).catch((err: Error) => {
          throw new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, `cannot reach the gateway of ${device.id} at ${device.gateway}: ${err.message}`);
        });
        const answer = await res.body.text();
        if (res.statusCode !== 200) {
          let detail = answer.slice(0, 300);
          try {
            const parsed = JSON.parse(answer) as { error?: { code?: string; message?: string } };
            if (parsed.error?.message) detail = `${parsed.error.message} [${parsed.error.code ?? res.statusCode}]`;
          } catch {
            // not JSON: shown as it is
          }
          throw new EdgemlError(ErrorCodes.CLI_SCORE_FAILED, `${url} answered ${res.statusCode}: ${detail}`);
        }
        ctx.out.result(JSON.parse(answer) as unknown, () => JSON.stringify(JSON.parse(answer), null, 2));
      }),
    );
  withClientOptions(score);
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}
