/**
 * `edgeml NAME …` loads only NAME's command modules (cli/program.ts LAZY_COMMANDS): each top-level
 * command built that way must be the very one the whole program (cli/main.ts) has, and every
 * client command must be listed (or deliberately left to the whole tree).
 */
import test from 'ava';
import type { Command } from 'commander';
import { PassThrough } from 'node:stream';
import type { CliIo } from '../../cli/commands/client-command.js';
import { buildProgram } from '../../cli/main.js';
import { buildBaseProgram, withClientCommands } from '../../cli/program.js';

const io = { env: {}, stdout: new PassThrough(), stderr: new PassThrough(), cwd: '/', interruptSignal: () => new AbortController().signal } as unknown as CliIo;
/** Need every command to list: completion walks the whole tree. */
const WHOLE_TREE = ['completion'];

/** A command as its user sees it: name, aliases, options, arguments, description and subcommands. */
function shape(c: Command): unknown {
  return {
    name: c.name(),
    aliases: c.aliases(),
    description: c.description(),
    options: c.options.map((o) => [o.flags, o.description, o.defaultValue]),
    args: c.registeredArguments.map((a) => [a.name(), a.required, a.variadic]),
    commands: c.commands.map(shape),
  };
}

const full = buildProgram(io);
const baseNames = buildBaseProgram(io).commands.map((c) => c.name());
const clientNames = full.commands.map((c) => c.name()).filter((n) => !baseNames.includes(n));

test('each client command loaded alone is the same as in the whole program', async (t) => {
  for (const name of clientNames.filter((n) => !WHOLE_TREE.includes(n))) {
    const alone = await withClientCommands(buildBaseProgram(io), io, ['--json', name, 'list']);
    const added = alone.commands.filter((c) => !baseNames.includes(c.name()));
    t.true(added.length < clientNames.length, `${name}: not in LAZY_COMMANDS (cli/program.ts), so the whole tree is loaded`);
    t.deepEqual(shape(added.find((c) => c.name() === name)!), shape(full.commands.find((c) => c.name() === name)!), name);
  }
});

test('no command, help, completion, a typo: the whole tree; hub and agent: none added', async (t) => {
  for (const args of [[], ['--help'], ['help', 'model'], ['completion', 'bash'], ['modle', 'list']]) {
    const program = await withClientCommands(buildBaseProgram(io), io, args);
    t.deepEqual(program.commands.map((c) => c.name()), full.commands.map((c) => c.name()), args.join(' '));
  }
  for (const args of [['hub', 'start'], ['--debug', 'agent', 'start']]) {
    t.deepEqual((await withClientCommands(buildBaseProgram(io), io, args)).commands.map((c) => c.name()), baseNames);
  }
});
