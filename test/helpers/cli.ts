/** Running the real `edgeml` CLI against a hub started by a test. */
import { execFile } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { EDGEML_BIN, type HubProcess } from './edgeml-process.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any EDGEML_* variable the machine running the tests may have set. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGEML_')));
}

/** Runs `edgeml ARGS` to completion; never throws for a non-zero exit. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [EDGEML_BIN, ...args], { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A CLI bound to one hub with one key (the admin key unless given; null for none at all). */
export function cliFor(hub: HubProcess, key: string | null = hub.adminKey, timeoutMs?: number) {
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), EDGEML_HUB: hub.url };
  if (key !== null) env.EDGEML_API_KEY = key;
  return (...args: string[]) => runCli(args, env, timeoutMs);
}

/** Asserts exit 0 and parses stdout, which must be exactly one JSON document. */
export function jsonOf<T>(t: ExecutionContext, r: CliResult): T {
  t.is(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
