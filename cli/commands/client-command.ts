/**
 * What every client command shares: the `--hub`, `--api-key`, `--config` and `--json` flags, and an
 * action wrapper that turns them into a HubClient and an Output before the command's own code runs.
 */
import type { Command } from 'commander';
import { loadClientConfig } from '../client-config.js';
import { HubClient } from '../hub-client.js';
import { createOutput, type Output } from '../output.js';

/** The process's environment and streams, passed in once by main.ts. */
export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  cwd: string;
  /** Aborted by Ctrl-C (SIGINT) or SIGTERM, so a command can undo partial work before it exits. */
  interruptSignal(): AbortSignal;
}

export interface ClientFlags {
  hub?: string;
  apiKey?: string;
  config?: string;
  json?: boolean;
}

export interface ClientContext {
  client: HubClient;
  out: Output;
  io: CliIo;
  /** Progress bars only for a person watching stderr, never around machine-readable output. */
  showProgress: boolean;
  signal: AbortSignal;
}

/**
 * Gives every subcommand of `group` the flags all client commands share. Called once the
 * subcommands are defined, so `--help` lists each command's own flags first.
 */
export function withClientOptions(command: Command): Command {
  return command
    .option('--hub <url>', "the hub's REST API (env EDGEML_HUB; default http://127.0.0.1:8080)")
    .option('--api-key <key>', 'API key (prefer EDGEML_API_KEY: flags show in ps)')
    .option('--config <file>', 'JSON config file with "hub" and "apiKey" (env EDGEML_CONFIG)')
    .option('--json', 'print one JSON document on stdout instead of text');
}

/** The client options on every subcommand of a group (`edgeml model …`). */
export function addClientOptions(group: Command): void {
  for (const command of group.commands) withClientOptions(command);
}

/**
 * Commander calls an action with the positional values, the flags and the command; `run` gets the
 * context, the positionals as parsed by their argParsers, and the flags.
 */
export function clientAction<A extends unknown[], F extends object>(io: CliIo, run: (ctx: ClientContext, args: A, flags: F & ClientFlags) => Promise<void>) {
  return async (...params: unknown[]): Promise<void> => {
    const command = params.at(-1) as Command;
    const flags = command.opts<F & ClientFlags>();
    const config = loadClientConfig({ flags: { hub: flags.hub, apiKey: flags.apiKey }, env: io.env, file: flags.config });
    const json = flags.json === true;
    const signal = io.interruptSignal();
    await run(
      {
        client: new HubClient({ baseUrl: config.hub, apiKey: config.apiKey, signal, onRetry: (line) => io.stderr.write(`${line}\n`) }),
        out: createOutput({ json, stdout: io.stdout }),
        io,
        showProgress: !json && io.stderr.isTTY === true,
        signal,
      },
      command.processedArgs as A,
      flags,
    );
  };
}
