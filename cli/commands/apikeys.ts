/**
 * `edgeml apikey …`: create, list, rotate and revoke API keys. The key itself is printed once, by
 * create and rotate: the hub keeps only its hash.
 */
import type { Command } from 'commander';
import type { ApiKeyCreated, ApiKeyInfo } from '../../shared/api/apikeys.js';
import { SCOPES, type Scope } from '../../shared/api/common.js';
import { parseApiKeyName, parseChoice } from '../args.js';
import { formatTime, renderTable } from '../output.js';
import { addClientOptions, clientAction, type CliIo } from './client-command.js';
import { addGraceOption, renderRotated } from './rotation-output.js';

export function renderApiKeyList(keys: readonly ApiKeyInfo[]): string {
  return renderTable(
    ['ID', 'NAME', 'SCOPE', 'CREATED', 'CREATED BY', 'REVOKED'],
    keys.map((k) => [k.id, k.name, k.scope, formatTime(k.createdAt), k.createdBy?.keyName ?? '-', k.revokedAt ? formatTime(k.revokedAt) : '-']),
    '(no API keys)',
  );
}

export function renderApiKeyCreated(k: ApiKeyCreated): string {
  return [`created API key ${k.id} (${k.name}, scope ${k.scope}):`, '', `  ${k.key}`, '', 'This is the only time the key is shown: store it now.'].join('\n');
}

export function addApiKeyCommands(program: Command, io: CliIo): void {
  const apikey = program.command('apikey').description('API keys for the hub (needs an admin key)');

  apikey
    .command('create')
    .description('create a key; it is shown only once')
    .requiredOption('--name <name>', 'what the key is for, e.g. ci-pipeline', parseApiKeyName('--name'))
    .requiredOption('--scope <scope>', SCOPES.join(', '), parseChoice('--scope', SCOPES))
    .action(
      clientAction<[], { name: string; scope: Scope }>(io, async (ctx, _args, flags) => {
        const k = await ctx.client.call('createApiKey', { body: { name: flags.name, scope: flags.scope } });
        ctx.out.result(k, () => renderApiKeyCreated(k));
      }),
    );

  apikey
    .command('list')
    .description('list keys (never the keys themselves)')
    .action(
      clientAction<[], object>(io, async (ctx) => {
        const list = await ctx.client.call('listApiKeys');
        ctx.out.result(list, () => renderApiKeyList(list.keys));
      }),
    );

  addGraceOption(
    apikey
      .command('rotate')
      .description('give a key a new secret (same id, name and scope; printed once); the old one keeps working for --grace, then only the new one')
      .argument('<id>', 'key id (from apikey list)'),
    'key',
  ).action(
    clientAction<[string], { grace: string }>(io, async (ctx, [id], flags) => {
      const k = await ctx.client.call('rotateApiKey', { params: { id }, body: { grace: flags.grace } });
      ctx.out.result({ id: k.id, key: k.key, previousValidUntil: k.previousValidUntil }, () => renderRotated(`API key ${k.id} (${k.name}, scope ${k.scope}): its new secret:`, k.key, 'key', k.previousValidUntil));
    }),
  );

  apikey
    .command('revoke')
    .description('revoke a key by id')
    .argument('<id>', 'key id (from apikey list)')
    .action(
      clientAction<[string], object>(io, async (ctx, [id]) => {
        const k = await ctx.client.call('revokeApiKey', { params: { id } });
        ctx.out.result(k, () => `revoked API key ${k.id} (${k.name})`);
      }),
    );

  addClientOptions(apikey);
}
