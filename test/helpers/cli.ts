/**
 * Running the real `edgeml` CLI against a hub started by a test. A secret a command answers with
 * (enroll, deploy, apikey create, rotations; `--json` or text) goes to the secret ledger, and the
 * command's output to the run's artefacts with that one answer's secrets masked: everywhere else,
 * the secret-leak scan must not find them. The command line is saved as it is: a secret there
 * would be in every process listing, so the scan must find it.
 */
import { execFile } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { EDGEML_BIN, type HubProcess } from './edgeml-process.js';
import { recordSecret, redact, saveArtefact, secretsInAnswer, secretsInText } from './secret-ledger.js';

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
      const shown = answerSecrets(stdout);
      for (const { kind, secret } of shown) recordSecret(kind, secret, `edgeml ${args.slice(0, 2).join(' ')}`);
      const masked = shown.map((s) => s.secret);
      saveArtefact(`cli-${process.pid}.log`, `$ edgeml ${args.join(' ')}\n[exit ${code}]\n${redact(stdout, masked)}${redact(stderr, masked)}\n`);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A CLI bound to one hub with one key (the admin key unless given; null for none at all). */
export function cliFor(hub: Pick<HubProcess, 'url' | 'caFile' | 'adminKey'>, key: string | null = hub.adminKey, timeoutMs?: number) {
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), EDGEML_HUB: hub.url, ...(hub.url.startsWith('https:') ? { EDGEML_CA: hub.caFile } : {}) };
  if (key !== null) env.EDGEML_API_KEY = key;
  const cli = (...args: string[]) => runCli(args, env, timeoutMs);
  /** The same CLI with more environment, e.g. EDGEML_SERVICE_KEY: secrets never go on a command line (ps shows it). */
  cli.withEnv = (extra: NodeJS.ProcessEnv) => (...args: string[]) => runCli(args, { ...env, ...extra }, timeoutMs);
  return cli;
}

/** Asserts exit 0 and parses stdout, which must be exactly one JSON document. */
export function jsonOf<T>(t: ExecutionContext, r: CliResult): T {
  t.is(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function answerSecrets(stdout: string): ReturnType<typeof secretsInAnswer> {
  try {
    return secretsInAnswer(JSON.parse(stdout));
  } catch {
    return secretsInText(stdout);
  }
}
