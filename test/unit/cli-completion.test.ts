/**
 * `edgeml completion`: the script is generated from the program tree, and a real bash completes
 * commands, subcommands and flags with it (COMP_WORDS/COMP_CWORD as bash's completion sets them).
 * zsh: its parser checks the zsh script when zsh is installed.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { buildProgram } from '../../cli/main.js';
import { completionScript, completionTree } from '../../cli/commands/completion.js';
import type { CliIo } from '../../cli/commands/client-command.js';

const io = { env: {}, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), interruptSignal: () => new AbortController().signal } as unknown as CliIo;
const program = buildProgram(io);

/** What bash offers for the command line `line` (the last word is the one being completed). */
function complete(script: string, line: string): string[] {
  const words = line.split(' ');
  const out = execFileSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _edgeml_complete; printf '%s\\n' "\${COMPREPLY[@]}"`], {
    encoding: 'utf8',
  });
  return out.split('\n').filter(Boolean);
}

test('the tree is the program: a command added to the program is completed without any list to update', (t) => {
  const small = new Command('edgeml');
  small.command('widget').command('spin').option('--speed <n>');
  t.deepEqual(completionTree(small), [
    { path: '', subcommands: ['widget'], options: ['--help', '-h'] },
    { path: 'widget', subcommands: ['spin'], options: ['--help', '-h'] },
    { path: 'widget spin', subcommands: [], options: ['--speed', '--help', '-h'] },
  ]);
});

test('bash completes commands, subcommands and flags of the real program', (t) => {
  const script = completionScript(program, 'bash');
  t.deepEqual(complete(script, 'edgeml mod'), ['model']);
  t.true(complete(script, 'edgeml model l').includes('list'));
  t.false(complete(script, 'edgeml model l').includes('show'));
  t.deepEqual(complete(script, 'edgeml context '), ['add', 'use', 'list', 'remove']);
  t.true(complete(script, 'edgeml model list --').includes('--json'));
  t.true(complete(script, 'edgeml model list --').includes('--context'));
  t.deepEqual(complete(script, 'edgeml --hub http://h:1 context u'), ['use'], 'a flag value is not taken for a command');
  t.true(complete(script, 'edgeml model register package.').includes('package.json'), 'an argument falls back to file names');
});

test('zsh parses the zsh script', (t) => {
  // The rig installs zsh (scripts/rig/setup.sh).
  t.falsy(spawnSync('zsh', ['--version']).error, 'zsh is not installed');
  const script = completionScript(program, 'zsh');
  const check = spawnSync('zsh', ['-n'], { input: script, encoding: 'utf8' });
  t.is(check.status, 0, check.stderr);
  // As bashcompinit calls it: zsh's 1-based words, COMP_CWORD = CURRENT - 1. Its compgen leaves the
  // prefix filtering to compadd, so the candidates are all of the path's subcommands.
  const run = spawnSync('zsh', ['-c', `${script}\nCOMP_WORDS=(edgeml context l); COMP_CWORD=2; _edgeml_complete; print -l -- "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
  t.deepEqual(run.stdout.split('\n').filter(Boolean), ['add', 'use', 'list', 'remove'], run.stderr);
});
