/**
 * What every client command shares: the `--hub`, `--api-key`, `--api-key-file`, `--ca`,
 * `--allow-insecure-http`, `--config`, `--context` and `--json` flags, and an action wrapper that turns them into a HubClient and an Output before
 * the command's own code runs.
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { loadClientConfig, type ClientConfig } from '../client-config.js';
import { fileError, inputError } from '../args.js';
import { HubClient } from '../../client/hub-client.js';
import { createOutput, type Output } from '../output.js';
import { parseCaPem } from '../../client/tls.js';
import { selectedContext } from '../contexts.js';

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
  apiKeyFile?: string;
  ca?: string;
  allowInsecureHttp?: boolean;
  config?: string;
  context?: string;
  json?: boolean;
}

export interface ClientContext {
  client: HubClient;
  /** The PEM CA from --ca / EDGEML_CA / the config file, if one was given. */
  ca: string | undefined;
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
    .addOption(new Option('--api-key <key>', 'API key (prefer --api-key-file or EDGEML_API_KEY: flags show in ps)').conflicts('apiKeyFile'))
    .option('--api-key-file <file>', 'a file holding the API key (env EDGEML_API_KEY_FILE)')
    .option('--ca <file>', "PEM CA certificate, the only one trusted for an https:// hub and device gateways (env EDGEML_CA; `edgeml hub ca` prints the hub's)")
    .option('--allow-insecure-http', 'send keys to a plain http:// hub or device gateway on a non-loopback address (they cross the network unencrypted)')
    .addOption(new Option('--config <file>', 'JSON config file with "hub", "apiKey", "apiKeyFile" and "ca" (env EDGEML_CONFIG)').conflicts('context'))
    .option('--context <name>', 'use this context (`edgeml context list`) instead of the current one (env EDGEML_CONTEXT)')
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
    const sources = { flags: { hub: flags.hub, apiKey: flags.apiKey, apiKeyFile: flags.apiKeyFile, ca: flags.ca }, env: io.env, file: flags.config };
    const hubGiven = [flags.hub, flags.config, io.env.EDGEML_HUB, io.env.EDGEML_CONFIG].some((v) => v !== undefined);
    const config = loadClientConfig(sources, selectedContext(flags.context, io.env, hubGiven)?.context);
    const ca = config.ca === undefined ? undefined : caOf(config.ca, where(flags.ca !== undefined, '--ca', 'EDGEML_CA', io.env, 'ca'));
    if (flags.apiKey !== undefined) warnSecretFlag(io, '--api-key', '--api-key-file or EDGEML_API_KEY');
    const apiKey = apiKeyOf(config, flags, io.env);
    const json = flags.json === true;
    const signal = io.interruptSignal();
    await run(
      {
        client: new HubClient({
          baseUrl: config.hub,
          apiKey,
          ca,
          allowInsecureHttp: flags.allowInsecureHttp === true,
          signal,
          onRetry: (line) => io.stderr.write(`${line}\n`),
        }),
        ca,
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

/** How a setting was given, for messages: the flag, the environment variable, or the config file's key. */
function where(fromFlag: boolean, flag: string, envName: string, env: CliIo['env'], key: keyof ClientConfig): string {
  if (fromFlag) return flag;
  return env[envName] !== undefined ? envName : `"${key}" in the config file`;
}

function caOf(path: string, setting: string): string {
  return parseCaPem(readSetting(path, setting), `${setting} ${path}`);
}

/** The contents of a file a setting names; an unreadable one is the user's input error, naming the setting. */
function readSetting(path: string, setting: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw fileError(path, err, `${setting} `);
  }
}

/**
 * The API key: given inline or read from a file. Each may come from a flag, the environment or the
 * config file, and the nearer source wins as for every setting; both from the same source is
 * ambiguous (on the command line commander refuses it as a usage error).
 */
function apiKeyOf(config: Readonly<ClientConfig>, flags: ClientFlags, env: CliIo['env']): string | undefined {
  const inline = config.apiKey || undefined;
  const source = (flag: string | undefined, envName: string) => (flag !== undefined ? 0 : env[envName] !== undefined ? 1 : 2);
  const [inlineFrom, fileFrom] = [source(flags.apiKey, 'EDGEML_API_KEY'), source(flags.apiKeyFile, 'EDGEML_API_KEY_FILE')];
  if (inline !== undefined && config.apiKeyFile !== undefined && inlineFrom === fileFrom) {
    throw inputError('both an API key and an API key file are set (EDGEML_API_KEY and EDGEML_API_KEY_FILE, or "apiKey" and "apiKeyFile" in the config file): keep one');
  }
  if (config.apiKeyFile === undefined || (inline !== undefined && inlineFrom < fileFrom)) {
    return checkApiKey(inline, where(flags.apiKey !== undefined, '--api-key', 'EDGEML_API_KEY', env, 'apiKey'));
  }
  return keyFromFile(config.apiKeyFile, where(flags.apiKeyFile !== undefined, '--api-key-file', 'EDGEML_API_KEY_FILE', env, 'apiKeyFile'));
}

/** The key in the file `path` names (surrounding whitespace dropped); `setting` says where the path came from. */
export function keyFromFile(path: string, setting: string): string {
  const key = readSetting(path, setting).trim();
  if (!key) throw inputError(`${setting} ${path}: the file is empty`);
  return checkApiKey(key, `${setting} ${path}`);
}

/** A secret given as a flag is in every process listing while the command runs: said once, on stderr (stdout may be JSON). */
export function warnSecretFlag(io: Pick<CliIo, 'stderr'>, flag: string, prefer: string): void {
  io.stderr.write(`edgeml: warning: ${flag} shows in the process list; prefer ${prefer}\n`);
}

/** Visible ASCII only, as a bearer token in a header; a refusal never repeats the key. */
export function checkApiKey<K extends string | undefined>(key: K, setting: string): K {
  if (key !== undefined && !/^[\x21-\x7e]+$/.test(key)) {
    throw inputError(`the key from ${setting} has characters a key cannot have (spaces, line breaks or non-ASCII); it is not shown here`);
  }
  return key;
}
