/**
 * Named hub contexts (`edgeml context …`): which hub, which API key file and which CA a client command
 * uses when no flag or variable says. Kept in `config.json` in the user's config directory
 * (EDGEML_CONFIG_DIR, else $XDG_CONFIG_HOME/edgeml, else ~/.config/edgeml), mode 0600 in a 0700
 * directory, written atomically (a temporary file renamed over it) so a crash never leaves half a file.
 * A directory others may write to is refused: they could swap the file and send keys to their hub.
 * A context holds the PATH of the key file, never the key.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EdgemlError, ErrorCodes, isEdgemlError } from '../shared/errors.js';
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
  // mkdir's mode applies only to a directory it creates.
  const mode = statSync(dir).mode & 0o777;
  if (mode & 0o022) {
    throw new EdgemlError(
      ErrorCodes.CONFIG_INVALID,
      `contexts directory ${dir} is writable by other users (mode ${mode.toString(8).padStart(4, '0')}): they could replace the contexts file; run chmod 700 ${dir}`,
    );
  }
  const path = contextFilePath(env);
  // A random name created exclusively ('wx' fails on an existing file or symlink): nothing planted at a
  // guessable name is followed or overwritten.
  const temp = `${path}.${randomBytes(8).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      // The mode given to open is masked by the umask: set it exactly before the file is visible.
      fchmodSync(fd, 0o600);
      writeFileSync(fd, `${JSON.stringify(file, null, 2)}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** The context named, or an input error saying which exist. */
export function contextNamed(file: ContextFile, name: string, setting: string): HubContext {
  // Own names only: "constructor" or "toString" is not a context.
  if (Object.hasOwn(file.contexts, name)) return file.contexts[name]!;
  const names = Object.keys(file.contexts);
  const near = closestName(name, names);
  const known = names.length ? `known: ${names.join(', ')}` : 'none is defined: `edgeml context add NAME --hub URL`';
  throw inputError(`${setting}: no context ${JSON.stringify(name)}${near ? ` (did you mean ${near}?)` : ''}; ${known}`);
}

/**
 * The context a client command uses: `--context`, else EDGEML_CONTEXT, else the current one; none
 * when no contexts file exists or none is current. `hubGiven` (the command names its hub with
 * --hub, EDGEML_HUB or a config file) makes the current context optional: a contexts file that is
 * damaged, or names a current context it lacks, then does not stop the command.
 */
export function selectedContext(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  hubGiven = false,
): { name: string; context: HubContext } | undefined {
  const named = flag ?? env.EDGEML_CONTEXT;
  if (named !== undefined) return { name: named, context: contextNamed(readContexts(env), named, flag !== undefined ? '--context' : 'EDGEML_CONTEXT') };
  try {
    const file = readContexts(env);
    if (file.current === undefined) return undefined;
    return { name: file.current, context: contextNamed(file, file.current, `the current context in ${contextFilePath(env)}`) };
  } catch (err) {
    if (hubGiven && isEdgemlError(err)) return undefined;
    throw err;
  }
}
