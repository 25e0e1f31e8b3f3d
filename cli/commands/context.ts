/**
 * `edgeml context add|use|list|remove`: named hubs with their key file and CA, so daily commands need
 * no `--hub`/`--api-key-file`/`--ca`. Local only: nothing here talks to a hub.
 */
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { HUB_URL_PATTERN } from '../client-config.js';
import { inputError, readText } from '../args.js';
import { createOutput, renderTable } from '../output.js';
import { CONTEXT_NAME_PATTERN, contextFilePath, contextNamed, readContexts, writeContexts, type ContextFile, type HubContext } from '../contexts.js';
import { keyFromFile, type CliIo } from './client-command.js';
import { parseCaPem } from '../../client/tls.js';

export interface ContextListEntry {
  name: string;
  current: boolean;
  hub: string;
  /** Whether a key file is set: the key itself is never shown. */
  apiKey: boolean;
  ca: string | null;
}

export function contextList(file: ContextFile): { current: string | null; contexts: ContextListEntry[] } {
  return {
    current: file.current ?? null,
    contexts: Object.entries(file.contexts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, c]) => ({ name, current: name === file.current, hub: c.hub, apiKey: c.apiKeyFile !== undefined, ca: c.ca ?? null })),
  };
}

export function renderContextList(list: ReturnType<typeof contextList>): string {
  return renderTable(
    ['CURRENT', 'NAME', 'HUB', 'API KEY', 'CA'],
    list.contexts.map((c) => [c.current ? '*' : '', c.name, c.hub, c.apiKey ? 'set' : '-', c.ca ?? '-']),
    '(no contexts: `edgeml context add NAME --hub URL --api-key-file FILE`)',
  );
}

function parseContextName(value: string): string {
  if (!CONTEXT_NAME_PATTERN.test(value)) throw inputError(`context name ${JSON.stringify(value)}: expected 1-64 letters, digits, ".", "_" or "-", e.g. lab`);
  return value;
}

function parseHubUrl(value: string): string {
  if (!new RegExp(HUB_URL_PATTERN).test(value)) throw inputError(`--hub ${JSON.stringify(value)}: expected http(s)://HOST[:PORT], e.g. https://hub.example:8080`);
  return value;
}

export function addContextCommands(program: Command, io: CliIo): void {
  const context = program.command('context').description(`named hubs with their API key file and CA (kept in ${'$XDG_CONFIG_HOME/edgeml/config.json'})`);
  const json = (command: Command) => command.option('--json', 'print one JSON document on stdout instead of text');

  context
    .command('add')
    .description('add or replace a context; the first one added becomes the current one')
    .argument('<name>', 'the context name, e.g. lab', parseContextName)
    .requiredOption('--hub <url>', "the hub's REST API", parseHubUrl)
    .option('--api-key-file <file>', 'a file holding the API key (its path is stored, not the key)')
    .option('--ca <file>', "PEM CA certificate to trust for this hub (`edgeml hub ca` prints the hub's)")
    // The name this flag had before it matched the client commands' --ca.
    .addOption(new Option('--ca-file <file>').hideHelp().conflicts('ca'))
    .action(async (name: string, flags: { hub: string; apiKeyFile?: string; ca?: string; caFile?: string }) => {
      const entry: HubContext = { hub: flags.hub };
      if (flags.apiKeyFile !== undefined) {
        entry.apiKeyFile = resolve(io.cwd, flags.apiKeyFile);
        keyFromFile(entry.apiKeyFile, '--api-key-file'); // refuse an unreadable or empty file now, not at the next command
      }
      const ca = flags.ca ?? flags.caFile;
      if (ca !== undefined) {
        const setting = flags.ca !== undefined ? '--ca' : '--ca-file';
        entry.ca = resolve(io.cwd, ca);
        parseCaPem(await readText(setting, entry.ca), `${setting} ${entry.ca}`);
      }
      const file = readContexts(io.env);
      const replaced = Object.hasOwn(file.contexts, name);
      const next: ContextFile = { current: file.current ?? name, contexts: { ...file.contexts, [name]: entry } };
      writeContexts(io.env, next);
      io.stdout.write(`${replaced ? 'replaced' : 'added'} context ${name}${next.current === name ? ' (current)' : ''} in ${contextFilePath(io.env)}\n`);
    });

  context
    .command('use')
    .description('make a context the current one')
    .argument('<name>', 'the context name', parseContextName)
    .action((name: string) => {
      const file = readContexts(io.env);
      contextNamed(file, name, 'context use');
      writeContexts(io.env, { ...file, current: name });
      io.stdout.write(`current context: ${name}\n`);
    });

  json(context.command('list').description('the contexts, the current one marked *')).action((flags: { json?: boolean }) => {
    const list = contextList(readContexts(io.env));
    createOutput({ json: flags.json === true, stdout: io.stdout }).result(list, () => renderContextList(list));
  });

  context
    .command('remove')
    .description('remove a context (if it was the current one, none is current afterwards)')
    .argument('<name>', 'the context name', parseContextName)
    .action((name: string) => {
      const file = readContexts(io.env);
      contextNamed(file, name, 'context remove');
      const { [name]: _removed, ...rest } = file.contexts;
      writeContexts(io.env, { ...(file.current !== undefined && file.current !== name ? { current: file.current } : {}), contexts: rest });
      io.stdout.write(`removed context ${name}\n`);
    });
}
