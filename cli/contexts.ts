/**
 * Named hub contexts (`edgeml context …`): which hub, which API key file and which CA a client command
 * uses when no flag or variable says. Kept in `config.json` in the user's config directory
 * (EDGEML_CONFIG_DIR, else $XDG_CONFIG_HOME/edgeml, else ~/.config/edgeml), mode 0600 in a 0700
 * directory, written atomically (a temporary file renamed over it) so a crash never leaves half a file.
 * A context holds the PATH of the key file, never the key.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EdgemlError, ErrorCodes } from '../shared/errors.js';
import { closestName } from '../shared/did-you-mean.js';
import { inputError } from './args.js';

export interface HubContext {
  hub: string;
  apiKeyFile?: string;
  ca?: string;
}

export interface ContextFile {
  current?: string;
  contexts: Record<string, HubContext>;
}

export const CONTEXT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function contextDir(env: Record<string, string | undefined>): string {
  if (env.EDGEML_CONFIG_DIR) return env.EDGEML_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'edgeml');
}

export function contextFilePath(env: Record<string, string | undefined>): string {
  return join(contextDir(env), 'config.json');
}

function damaged(path: string, why: string, cause?: unknown): EdgemlError {
  return new EdgemlError(ErrorCodes.CONFIG_INVALID, `contexts file ${path}: ${why} (fix or remove it)`, cause === undefined ? {} : { cause });
}

/** The contexts file, or an empty one when there is none yet. */
export function readContexts(env: Record<string, string | undefined>): ContextFile {
  const path = contextFilePath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: {} };
    throw damaged(path, `cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw damaged(path, 'not valid JSON', err);
  }
  const file = parsed as Partial<ContextFile> | null;
  if (typeof file !== 'object' || file === null || typeof file.contexts !== 'object' || file.contexts === null) {
    throw damaged(path, 'expected {"current": NAME, "contexts": {NAME: {"hub", "apiKeyFile", "ca"}}}');
  }
  for (const [name, c] of Object.entries(file.contexts)) {
    if (typeof c?.hub !== 'string') throw damaged(path, `context ${JSON.stringify(name)} has no "hub"`);
  }
  return { contexts: file.contexts, ...(typeof file.current === 'string' ? { current: file.current } : {}) };
}

export function writeContexts(env: Record<string, string | undefined>, file: ContextFile): void {
  const dir = contextDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = contextFilePath(env);
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  // The mode given to writeFileSync is masked by the umask: set it exactly before the file is visible.
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}

/** The context named, or an input error saying which exist. */
export function contextNamed(file: ContextFile, name: string, setting: string): HubContext {
  const found = file.contexts[name];
  if (found) return found;
  const names = Object.keys(file.contexts);
  const near = closestName(name, names);
  const known = names.length ? `known: ${names.join(', ')}` : 'none is defined: `edgeml context add NAME --hub URL`';
  throw inputError(`${setting}: no context ${JSON.stringify(name)}${near ? ` (did you mean ${near}?)` : ''}; ${known}`);
}

/**
 * The context a client command uses: `--context`, else EDGEML_CONTEXT, else the current one; none
 * when no contexts file exists or none is current.
 */
export function selectedContext(
  flag: string | undefined,
  env: Record<string, string | undefined>,
): { name: string; context: HubContext } | undefined {
  const named = flag ?? env.EDGEML_CONTEXT;
  const file = readContexts(env);
  if (named !== undefined) return { name: named, context: contextNamed(file, named, flag !== undefined ? '--context' : 'EDGEML_CONTEXT') };
  if (file.current === undefined) return undefined;
  return { name: file.current, context: contextNamed(file, file.current, `the current context in ${contextFilePath(env)}`) };
}
