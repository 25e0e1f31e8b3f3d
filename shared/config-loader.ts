/**
 * Configuration for a process comes from flags, then environment variables, then a JSON config file
 * (earlier wins). Everything is checked against one schema: an unknown key is an error with a hint,
 * and a bad value names the key and where it came from. The result is frozen.
 */
import { readFileSync } from 'node:fs';
import type { Static, TObject } from '@sinclair/typebox';
import { compileChecker } from './schema.js';
import { EdgemlError, ErrorCodes } from './errors.js';
import { closestName } from './did-you-mean.js';

export interface ConfigSources {
  /** Values given on the command line; undefined entries are ignored. */
  flags: Record<string, unknown>;
  env: Record<string, string | undefined>;
  /** Path of a JSON config file from a flag; else `{envPrefix}CONFIG` names it; else none. */
  file?: string | undefined;
}

export interface ConfigSpec<S extends TObject> {
  schema: S;
  /** e.g. `EDGEML_HUB_`: `EDGEML_HUB_HTTP` sets `http`, `EDGEML_HUB_LOG_LEVEL` sets `logLevel`. */
  envPrefix: string;
  /**
   * Skip `{envPrefix}*` variables that name no key instead of refusing them. For a prefix that other
   * processes' variables share (the client's `EDGEML_` also matches `EDGEML_HUB_HTTP`), where an
   * unknown name is most likely someone else's setting rather than a typo.
   */
  ignoreUnknownEnv?: boolean;
}

export function envName(prefix: string, key: string): string {
  return prefix + key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function keyFromEnv(prefix: string, name: string): string {
  return name
    .slice(prefix.length)
    .toLowerCase()
    .replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function hint(key: string, known: string[], render: (k: string) => string): string {
  const near = closestName(key, known);
  if (near) return ` (did you mean ${render(near)}?)`;
  return ` (known: ${known.map(render).join(', ')})`;
}

function configError(message: string): EdgemlError {
  return new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: ${message}`);
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw configError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw configError(`config file ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

export function loadConfig<S extends TObject>(spec: ConfigSpec<S>, sources: ConfigSources): Readonly<Static<S>> {
  const known = Object.keys(spec.schema.properties);
  const merged: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  const fileEnv = `${spec.envPrefix}CONFIG`;
  const file = sources.file ?? sources.env[fileEnv];

  if (file) {
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      if (!known.includes(key)) {
        throw configError(`unknown key "${key}" in ${file}${hint(key, known, (k) => `"${k}"`)}`);
      }
      merged[key] = value;
      origin[key] = `config file ${file}`;
    }
  }
  for (const [name, value] of Object.entries(sources.env)) {
    if (!name.startsWith(spec.envPrefix) || name === fileEnv || value === undefined) continue;
    const key = keyFromEnv(spec.envPrefix, name);
    if (!known.includes(key)) {
      if (spec.ignoreUnknownEnv) continue;
      throw configError(`unknown environment variable ${name}${hint(key, known, (k) => envName(spec.envPrefix, k))}`);
    }
    merged[key] = value;
    origin[key] = `environment variable ${name}`;
  }
  for (const [key, value] of Object.entries(sources.flags)) {
    if (value === undefined || !known.includes(key)) continue;
    merged[key] = value;
    origin[key] = `flag ${flagName(key)}`;
  }

  const result = compileChecker(spec.schema, { coerce: true })(merged);
  if (!result.ok) {
    const key = result.error.split(/[.:]/)[0]!;
    const where = origin[key]
      ? ` (from ${origin[key]})`
      : ` (set ${flagName(key)}, ${envName(spec.envPrefix, key)} or "${key}" in the config file)`;
    throw configError(`${result.error}${where}`);
  }
  return Object.freeze(result.value);
}
